/**
 * Small numeric and plotting helpers for the long runs (soak): a least-squares slope, and an SVG line
 * chart with one panel per series (each with its own scale), readable in any browser or on GitHub.
 */

export type Point = [number, number];

export interface Series {
  name: string;
  points: Point[];
}

/** Slope of the least-squares line through the points (0 for fewer than two distinct x). */
export function leastSquaresSlope(points: readonly Point[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const meanX = points.reduce((sum, [x]) => sum + x, 0) / n;
  const meanY = points.reduce((sum, [, y]) => sum + y, 0) / n;
  let numerator = 0;
  let denominator = 0;
  for (const [x, y] of points) {
    numerator += (x - meanX) * (y - meanY);
    denominator += (x - meanX) ** 2;
  }
  return denominator === 0 ? 0 : numerator / denominator;
}

const WIDTH = 720;
const PANEL_HEIGHT = 150;
const MARGIN = { left: 60, right: 20, top: 28, bottom: 24 };

const escape = (text: string): string => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
const label = (value: number): string => (Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(1));

export function svgPlot(title: string, xLabel: string, series: readonly Series[]): string {
  const height = 30 + series.length * (PANEL_HEIGHT + MARGIN.top + MARGIN.bottom);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="18" text-anchor="middle" font-size="14">${escape(title)}</text>`,
  ];
  series.forEach((one, index) => {
    const top = 30 + index * (PANEL_HEIGHT + MARGIN.top + MARGIN.bottom) + MARGIN.top;
    const xs = one.points.map(([x]) => x);
    const ys = one.points.map(([, y]) => y);
    const [minX, maxX] = [Math.min(...xs, 0), Math.max(...xs, 1e-9)];
    const [minY, maxY] = ys.length > 0 ? [Math.min(...ys) * 0.95, Math.max(...ys) * 1.05 + 1e-9] : [0, 1];
    const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
    const px = (x: number): number => MARGIN.left + ((x - minX) / (maxX - minX)) * plotWidth;
    const py = (y: number): number => top + PANEL_HEIGHT - ((y - minY) / (maxY - minY)) * PANEL_HEIGHT;
    parts.push(
      `<text x="${MARGIN.left}" y="${top - 8}" font-weight="bold">${escape(one.name)}</text>`,
      `<rect x="${MARGIN.left}" y="${top}" width="${plotWidth}" height="${PANEL_HEIGHT}" fill="none" stroke="#999"/>`,
      `<text x="${MARGIN.left - 6}" y="${top + 4}" text-anchor="end">${label(maxY)}</text>`,
      `<text x="${MARGIN.left - 6}" y="${top + PANEL_HEIGHT}" text-anchor="end">${label(minY)}</text>`,
      `<text x="${MARGIN.left}" y="${top + PANEL_HEIGHT + 14}">${label(minX)}</text>`,
      `<text x="${WIDTH - MARGIN.right}" y="${top + PANEL_HEIGHT + 14}" text-anchor="end">${label(maxX)} ${escape(xLabel)}</text>`,
      `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${one.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
