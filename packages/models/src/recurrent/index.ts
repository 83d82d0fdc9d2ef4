export {
  Cell, RNNCell, LSTMCell, GRUCell, makeCell, gateCount, CELL_KINDS,
  type CellKind, type CellState, type CellWeights, type CellOptions, type RecurrentCell,
} from './cells.js';
export { unroll, checkLengths, type UnrollOptions, type UnrollResult } from './unroll.js';
export {
  RecurrentLayer, RNN, LSTM, GRU, parameterNames,
  type RecurrentOptions, type RecurrentState, type RecurrentResult, type RecurrentForwardOptions,
} from './layer.js';
