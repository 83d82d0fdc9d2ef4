/*
 * Attention heatmaps as a self-contained SVG (no dependencies): one panel per sentence, source words
 * along the top, output words down the left, each cell shaded by its weight (white 0 → dark blue 1),
 * panels stacked vertically.
 */
import { LoomError } from '@loom/core';

export interface HeatmapPanel {
  /** Column labels: the source tokens. */
  source: readonly string[];
  /** Row labels: the output tokens (EOS included when it has a row). */
  output: readonly string[];
  /** weights[row][column], each in [0, 1]. */
  weights: readonly (readonly number[])[];
  /** A line above the panel. */
  title?: string;
}

export interface HeatmapOptions {
  /** Pixels per cell. Default 28. */
  cell?: number;
  /** Print each weight in its cell (two decimals). Default false. */
  values?: boolean;
}

export function attentionHeatmapSvg(panels: readonly HeatmapPanel[], opts: HeatmapOptions = {}): string {
  if (panels.length === 0) throw new LoomError('attentionHeatmapSvg: needs at least one panel');
  const cell = opts.cell ?? 28;
  const charW = 7; // an estimate of one character's width at font-size 12 (7.5 for the bold 13 titles), for the margins
  panels.forEach((p, i) => {
    if (p.weights.length !== p.output.length) throw new LoomError(`attentionHeatmapSvg: panels[${i}] has ${p.output.length} output labels but ${p.weights.length} weight rows`);
    p.weights.forEach((row, r) => {
      if (row.length !== p.source.length) throw new LoomError(`attentionHeatmapSvg: panels[${i}].weights[${r}] has ${row.length} values, expected ${p.source.length} (one per source token)`);
    });
  });
  const left = 12 + charW * Math.max(...panels.map((p) => Math.max(0, ...p.output.map((w) => w.length))));
  const parts: string[] = [];
  let y = 10, width = 0;
  for (const p of panels) {
    const top = 8 + charW * Math.max(0, ...p.source.map((w) => w.length)) * 0.75 + (p.title ? 22 : 0);
    if (p.title) parts.push(`<text x="10" y="${y + 14}" font-size="13" font-weight="bold">${escapeXml(p.title)}</text>`);
    const y0 = y + top;
    p.source.forEach((w, j) => {
      const x = left + j * cell + cell / 2;
      // Rotated -45° so long words do not overlap.
      parts.push(`<text x="${x}" y="${y0 - 6}" font-size="12" transform="rotate(-45 ${x} ${y0 - 6})">${escapeXml(w)}</text>`);
    });
    p.output.forEach((w, i) => {
      parts.push(`<text x="${left - 6}" y="${y0 + i * cell + cell / 2 + 4}" font-size="12" text-anchor="end">${escapeXml(w)}</text>`);
      p.weights[i].forEach((v, j) => {
        const a = Math.min(1, Math.max(0, v));
        parts.push(`<rect x="${left + j * cell}" y="${y0 + i * cell}" width="${cell}" height="${cell}" fill="${shade(a)}" stroke="#ddd" stroke-width="0.5"><title>${escapeXml(`${w} ← ${p.source[j]}: ${v.toFixed(3)}`)}</title></rect>`);
        if (opts.values) {
          parts.push(`<text x="${left + j * cell + cell / 2}" y="${y0 + i * cell + cell / 2 + 3}" font-size="8" text-anchor="middle" fill="${a > 0.5 ? '#fff' : '#000'}">${v.toFixed(2)}</text>`);
        }
      });
    });
    width = Math.max(width, left + p.source.length * cell + 20, p.title ? 20 + 7.5 * p.title.length : 0);
    y = y0 + p.output.length * cell + 24;
  }
  const height = Math.ceil(y);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(width)}" height="${height}" viewBox="0 0 ${Math.ceil(width)} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

/** White (0) to dark blue (1). */
function shade(a: number): string {
  const mix = (from: number, to: number): number => Math.round(from + (to - from) * a);
  const hex = (v: number): string => v.toString(16).padStart(2, '0');
  return `#${hex(mix(255, 8))}${hex(mix(255, 48))}${hex(mix(255, 107))}`;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
