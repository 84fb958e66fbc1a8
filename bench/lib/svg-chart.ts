/**
 * A small line chart as a standalone SVG document: linear axes from zero, ticks at round numbers, one coloured line
 * per series with a legend. Enough for the benchmark's figures without a plotting dependency.
 */

export interface ChartSeries {
  readonly name: string;
  readonly points: ReadonlyArray<{ readonly x: number; readonly y: number }>;
  /** Drawn dashed (e.g. a p99 beside its p50). @default false */
  readonly dashed?: boolean;
}

export interface LineChartSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly ChartSeries[];
}

const WIDTH = 720;
const HEIGHT = 420;
const MARGIN = { left: 70, right: 20, top: 40, bottom: 55 } as const;
const LEGEND_LINE = 16;
/** One colour per target or instance; dashed and solid lines of one pair share a colour. */
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

/** A round step (1, 2 or 5 × 10^n) giving about five ticks up to `max`. */
export function niceStep(max: number): number {
  if (!(max > 0)) return 1;
  const rough = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough)!;
  return step;
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const tickText = (value: number) => (Math.abs(value) >= 1_000 ? `${value / 1_000}k` : String(Number(value.toPrecision(3))));

export function lineChart(spec: LineChartSpec): string {
  const points = spec.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xStep = niceStep(Math.max(0, ...points.map((p) => p.x)));
  const yStep = niceStep(Math.max(0, ...points.map((p) => p.y)));
  const xMax = Math.max(xStep, Math.ceil(Math.max(0, ...points.map((p) => p.x)) / xStep) * xStep);
  const yMax = Math.max(yStep, Math.ceil(Math.max(0, ...points.map((p) => p.y)) / yStep) * yStep);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (x: number) => (MARGIN.left + (x / xMax) * plotW).toFixed(1);
  const sy = (y: number) => (MARGIN.top + plotH - (y / yMax) * plotH).toFixed(1);

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="14">${escape(spec.title)}</text>`,
  ];
  for (let x = 0; x <= xMax + xStep / 2; x += xStep) {
    parts.push(`<line x1="${sx(x)}" y1="${sy(0)}" x2="${sx(x)}" y2="${sy(yMax)}" stroke="#e5e5e5"/>`,
      `<text x="${sx(x)}" y="${HEIGHT - MARGIN.bottom + 16}" text-anchor="middle">${tickText(x)}</text>`);
  }
  for (let y = 0; y <= yMax + yStep / 2; y += yStep) {
    parts.push(`<line x1="${sx(0)}" y1="${sy(y)}" x2="${sx(xMax)}" y2="${sy(y)}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${Number(sy(y)) + 4}" text-anchor="end">${tickText(y)}</text>`);
  }
  parts.push(
    `<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(xMax)}" y2="${sy(0)}" stroke="black"/>`,
    `<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(0)}" y2="${sy(yMax)}" stroke="black"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 12}" text-anchor="middle">${escape(spec.xLabel)}</text>`,
    `<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escape(spec.yLabel)}</text>`,
  );
  // Solid and dashed lines of one name prefix (p50 and p99 of one target) share a colour.
  const colourOf = new Map<string, string>();
  spec.series.forEach((series, i) => {
    const family = series.name.replace(/ p\d+$/, '');
    if (!colourOf.has(family)) colourOf.set(family, COLOURS[colourOf.size % COLOURS.length]);
    const colour = colourOf.get(family)!;
    const dash = series.dashed ? ' stroke-dasharray="6 4"' : '';
    const valid = series.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2"${dash} points="${valid.map((p) => `${sx(p.x)},${sy(p.y)}`).join(' ')}"/>`);
    for (const p of valid) parts.push(`<circle cx="${sx(p.x)}" cy="${sy(p.y)}" r="3" fill="${colour}"/>`);
    const ly = MARGIN.top + 8 + i * LEGEND_LINE;
    parts.push(`<line x1="${MARGIN.left + 12}" y1="${ly}" x2="${MARGIN.left + 36}" y2="${ly}" stroke="${colour}" stroke-width="2"${dash}/>`,
      `<text x="${MARGIN.left + 42}" y="${ly + 4}">${escape(series.name)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
