// Entry of test worker threads: require()s the .ts file named in workerData.__entry (see threads.ts).
const { workerData } = require('node:worker_threads');
require(workerData.__entry);
