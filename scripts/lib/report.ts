/*
 * The run report: loss and perplexity curves (train per step, validation per evaluation, test at the end)
 * drawn by ECharts' server-side SVG renderer (pure JavaScript, no DOM, no native code; the same library
 * bench:scaling uses), written as report.svg and embedded in report.html with the final figures, the
 * sample and the config.
 */
import * as fs from 'node:fs';
import * as echarts from 'echarts';
import type { TrainConfig } from './config.js';
import type { Metric, RunFolder } from './run-folder.js';

type StepMetric = Extract<Metric, { type: 'step' }>;
type EvalMetric = Extract<Metric, { type: 'eval' }>;

/** At most `max` points: the mean of each bucket of consecutive steps (a long run has 100k steps). */
export function downsample(steps: StepMetric[], max = 1000): [number, number][] {
  if (steps.length <= max) return steps.map((s) => [s.step, s.loss]);
  const per = Math.ceil(steps.length / max);
  const out: [number, number][] = [];
  for (let i = 0; i < steps.length; i += per) {
    const bucket = steps.slice(i, i + per);
    const mean = bucket.reduce((a, s) => a + s.loss, 0) / bucket.length;
    out.push([bucket[bucket.length - 1].step, mean]);
  }
  return out;
}

export function renderCurvesSvg(metrics: Metric[], title: string, width = 960, height = 420): string {
  const steps = metrics.filter((m): m is StepMetric => m.type === 'step' && Number.isFinite(m.loss));
  const valid = metrics.filter((m): m is EvalMetric => m.type === 'eval' && m.split === 'valid');
  const test = metrics.filter((m): m is EvalMetric => m.type === 'eval' && m.split === 'test');
  const train = downsample(steps);
  const lossSeries = (name: string, data: [number, number][], grid: number, opts: object = {}) => ({
    name, type: 'line', xAxisIndex: grid, yAxisIndex: grid, data, showSymbol: data.length < 50, symbolSize: 6, ...opts,
  });
  const ppl = (d: [number, number][]): [number, number][] => d.map(([x, y]) => [x, Math.exp(y)]);
  const v: [number, number][] = valid.map((m) => [m.step, m.loss]);
  const t: [number, number][] = test.map((m) => [m.step, m.loss]);
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  chart.setOption({
    animation: false,
    backgroundColor: '#ffffff',
    title: [
      { text: title, left: 'center', top: 4, textStyle: { fontSize: 14 } },
      { text: 'loss (nats per token)', left: '25%', top: 28, textAlign: 'center', textStyle: { fontSize: 12, fontWeight: 'normal' } },
      { text: 'perplexity (log scale)', left: '75%', top: 28, textAlign: 'center', textStyle: { fontSize: 12, fontWeight: 'normal' } },
    ],
    legend: { bottom: 4, data: ['train', 'valid', 'test'] },
    grid: [
      { left: 60, right: '54%', top: 56, bottom: 64 },
      { left: '56%', right: 24, top: 56, bottom: 64 },
    ],
    xAxis: [
      { type: 'value', gridIndex: 0, name: 'step', nameLocation: 'middle', nameGap: 24, min: 0 },
      { type: 'value', gridIndex: 1, name: 'step', nameLocation: 'middle', nameGap: 24, min: 0 },
    ],
    yAxis: [
      { type: 'value', gridIndex: 0, scale: true },
      { type: 'log', gridIndex: 1, logBase: 10 },
    ],
    color: ['#5470c6', '#ee6666', '#3ba272'],
    series: [
      lossSeries('train', train, 0),
      lossSeries('valid', v, 0, { showSymbol: true }),
      lossSeries('test', t, 0, { type: 'scatter', symbolSize: 10 }),
      lossSeries('train', ppl(train), 1),
      lossSeries('valid', ppl(v), 1, { showSymbol: true }),
      lossSeries('test', ppl(t), 1, { type: 'scatter', symbolSize: 10 }),
    ],
  });
  const svg = chart.renderToSVGString();
  chart.dispose(); // without it a timer keeps the process alive
  return svg;
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export interface ReportSummary {
  /** Lines of the "figures" table: label → value. */
  figures: [string, string][];
  sample: string | null;
}

/** Writes report.svg and report.html into the run folder from its metrics.jsonl. */
export function writeReport(run: RunFolder, config: TrainConfig, summary: ReportSummary): { svg: string; html: string } {
  const metrics = run.readMetrics();
  const title = `${config.name}: ${config.model.numLayers}-layer ${config.model.cell.toUpperCase()} ${config.model.hiddenSize}, ${config.data.tokenizer} tokens`;
  const svg = renderCurvesSvg(metrics, title);
  const svgPath = run.file('report.svg');
  fs.writeFileSync(svgPath, svg);
  const rows = summary.figures.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('\n');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222 }
table { border-collapse: collapse } th, td { text-align: left; padding: 2px 12px 2px 0; vertical-align: top }
th { font-weight: 600 } pre { background: #f6f6f6; padding: 1em; white-space: pre-wrap; overflow-x: auto }
</style></head><body>
<h1>${esc(title)}</h1>
<p>Run folder: <code>${esc(run.dir)}</code>. Curves also in <a href="report.svg">report.svg</a>; every step in <code>metrics.jsonl</code>.</p>
${svg}
<h2>Figures</h2>
<table>
${rows}
</table>
${summary.sample !== null ? `<h2>Sample</h2>\n<pre>${esc(summary.sample)}</pre>` : ''}
<h2>Config</h2>
<pre>${esc(JSON.stringify(config, null, 2))}</pre>
</body></html>
`;
  const htmlPath = run.file('report.html');
  fs.writeFileSync(htmlPath, html);
  return { svg: svgPath, html: htmlPath };
}
