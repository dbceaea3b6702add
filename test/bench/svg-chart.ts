// A horizontal bar chart as a standalone SVG string, one per benchmark scenario.
//
// Written by hand rather than with a charting library: a bar chart is forty lines of SVG, and a
// dependency (plus its headless-browser or canvas toolchain) would be the biggest part of the
// benchmark for the smallest part of its value. The output is plain text that diffs well in git.
import type { Bar } from './bench-support.ts';

const WIDTH = 640;
const BAR_HEIGHT = 26;
const GAP = 10;
const LABEL_WIDTH = 190;
const VALUE_WIDTH = 110;
const TOP = 44;
const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948'];

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits });
}

/** Bars scaled to the largest value; each labelled on the left and valued on the right. */
export function barChartSvg(title: string, unit: string, bars: readonly Bar[]): string {
  const height = TOP + bars.length * (BAR_HEIGHT + GAP) + 10;
  const max = Math.max(1e-9, ...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)));
  const span = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20;
  const rows = bars.map((bar, i) => {
    const y = TOP + i * (BAR_HEIGHT + GAP);
    const w = Number.isFinite(bar.value) && bar.value > 0 ? Math.max(1, (bar.value / max) * span) : 0;
    const color = COLORS[i % COLORS.length] ?? '#4e79a7';
    return [
      `  <text x="${LABEL_WIDTH - 8}" y="${y + BAR_HEIGHT * 0.68}" text-anchor="end">${escapeXml(bar.label)}</text>`,
      `  <rect x="${LABEL_WIDTH}" y="${y}" width="${w.toFixed(1)}" height="${BAR_HEIGHT}" fill="${color}"/>`,
      `  <text x="${(LABEL_WIDTH + w + 6).toFixed(1)}" y="${y + BAR_HEIGHT * 0.68}">${escapeXml(`${formatNumber(bar.value)} ${unit}`)}</text>`,
    ].join('\n');
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="13">`,
    `  <rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `  <text x="10" y="24" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    ...rows,
    '</svg>',
    '',
  ].join('\n');
}
