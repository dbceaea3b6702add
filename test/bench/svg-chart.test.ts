// Tests of the benchmark bar chart: a min–max line only where the runs differ, a subtitle on a line of its own, text escaped.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { barChartSvg } from './svg-chart.ts';

const lines = (svg: string) => svg.match(/<path /g)?.length ?? 0;

describe('Function: barChartSvg', () => {
  it('draws a min–max line across each bar whose runs differ, and none for a bar measured once or the same each time', () => {
    const svg = barChartSvg('B3', 'ms', [
      { label: 'ideal', value: 1_500, low: 1_500, high: 1_500 },
      { label: 'container worker', value: 1_700, low: 1_650, high: 1_900 },
      { label: 'once', value: 1_600 },
    ]);
    assert.equal(lines(svg), 1);
  });

  it('scales bars so that the longest range still fits, and writes the median beyond its line', () => {
    const svg = barChartSvg('B4', 'ms', [
      { label: 'p99 alone', value: 10, low: 8, high: 12 },
      { label: 'p99 spread', value: 30, low: 10, high: 200 },
    ]);
    const widths = [...svg.matchAll(/<rect x="190" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
    const ends = [...svg.matchAll(/<path d="M[\d.]+ \d+H([\d.]+)/g)].map((m) => Number(m[1]));
    assert.ok(Math.max(...ends) <= 640 - 110, 'the longest line ends before the value column');
    assert.ok((widths[1] ?? 0) < (ends[1] ?? 0), 'the median bar is shorter than its max');
    assert.match(svg, /<text x="([\d.]+)" y="[\d.]+">30 ms<\/text>/);
    const textX = Number(svg.match(/<text x="([\d.]+)" y="[\d.]+">30 ms<\/text>/)?.[1]);
    assert.ok(textX > (ends[1] ?? 0), 'the value is written after the line, not over it');
  });

  it('puts a subtitle on its own line and escapes text', () => {
    const svg = barChartSvg('a < b', '/s', [{ label: 'x & y', value: 1 }], 'median of 3 runs');
    assert.match(svg, /<text x="10" y="44" font-size="12" fill="#555555">median of 3 runs<\/text>/);
    assert.match(svg, />a &lt; b</);
    assert.match(svg, />x &amp; y</);
  });
});
