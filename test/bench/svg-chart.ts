// A horizontal bar chart as a standalone SVG string, one per benchmark scenario: bars at the median, a line across each from min to max.
//
// Written by hand rather than with a charting library: a bar chart is forty lines of SVG, and a
// dependency (plus its headless-browser or canvas toolchain) would be the biggest part of the
// benchmark for the smallest part of its value. The output is plain text that diffs well in git.
import type { Bar } from './bench-support.ts';

/** A bar, with the range of the runs it is the median of when there were several. */
export interface ChartBar extends Bar {
  low?: number;
  high?: number;
}

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

/** Bars scaled to the largest value (or range end); each labelled on the left and valued on the right, with a min–max line when it has a range. */
export function barChartSvg(title: string, unit: string, bars: readonly ChartBar[], subtitle?: string): string {
  // A subtitle (how many runs) gets a line of its own: appended to the title it would run off a 640-pixel chart.
  const top = subtitle === undefined ? TOP : TOP + 18;
  const height = top + bars.length * (BAR_HEIGHT + GAP) + 10;
  const finite = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v : 0);
  const max = Math.max(1e-9, ...bars.map((b) => Math.max(finite(b.value), finite(b.high))));
  const span = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20;
  const x = (v: number) => LABEL_WIDTH + (Math.max(0, v) / max) * span;
  const rows = bars.map((bar, i) => {
    const y = top + i * (BAR_HEIGHT + GAP);
    const w = Number.isFinite(bar.value) && bar.value > 0 ? Math.max(1, (bar.value / max) * span) : 0;
    const color = COLORS[i % COLORS.length] ?? '#4e79a7';
    const row = [
      `  <text x="${LABEL_WIDTH - 8}" y="${y + BAR_HEIGHT * 0.68}" text-anchor="end">${escapeXml(bar.label)}</text>`,
      `  <rect x="${LABEL_WIDTH}" y="${y}" width="${w.toFixed(1)}" height="${BAR_HEIGHT}" fill="${color}"/>`,
    ];
    let textX = LABEL_WIDTH + w + 6;
    const { low, high } = bar;
    if (low !== undefined && high !== undefined && Number.isFinite(low) && Number.isFinite(high) && high > low) {
      // The spread of the runs: a line from min to max with short caps, drawn over the bar.
      const [x1, x2, mid] = [x(low), x(high), y + BAR_HEIGHT / 2];
      row.push(
        `  <path d="M${x1.toFixed(1)} ${mid}H${x2.toFixed(1)}M${x1.toFixed(1)} ${y + 6}V${y + BAR_HEIGHT - 6}M${x2.toFixed(1)} ${y + 6}V${y + BAR_HEIGHT - 6}" stroke="#222222" stroke-width="1.5" fill="none"/>`,
      );
      textX = Math.max(textX, x2 + 6);
    }
    row.push(`  <text x="${textX.toFixed(1)}" y="${y + BAR_HEIGHT * 0.68}">${escapeXml(`${formatNumber(bar.value)} ${unit}`)}</text>`);
    return row.join('\n');
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="13">`,
    `  <rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    `  <text x="10" y="24" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    ...(subtitle === undefined ? [] : [`  <text x="10" y="44" font-size="12" fill="#555555">${escapeXml(subtitle)}</text>`]),
    ...rows,
    '</svg>',
    '',
  ].join('\n');
}
