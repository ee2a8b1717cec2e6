// Time-series charts with uPlot: one chart per metric on the job page, and
// the overlay of many runs on the experiment page.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
  "#ea580c", "#4f46e5", "#0d9488", "#be123c"];

export const color = (i) => PALETTE[i % PALETTE.length];

function width(el) {
  return Math.max(280, Math.floor(el.getBoundingClientRect().width || 600) - 8);
}

// series: [{label, steps, values, color?, width?}] on a shared step axis.
export function lineChart(el, title, series, opts = {}) {
  const steps = [...new Set(series.flatMap((s) => s.steps))].sort((a, b) => a - b);
  const index = new Map(steps.map((s, i) => [s, i]));
  const data = [steps];
  for (const s of series) {
    const ys = new Array(steps.length).fill(null);
    s.steps.forEach((st, i) => (ys[index.get(st)] = s.values[i]));
    data.push(ys);
  }
  const plot = new uPlot(
    {
      title,
      width: width(el),
      height: opts.height || 220,
      scales: { x: { time: false } },
      axes: [{ label: opts.xLabel || "step" }, {}],
      legend: { show: series.length <= 12 },
      series: [
        { label: "step" },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.color || color(i),
          width: s.width || 1.5,
          spanGaps: true,
          points: { show: steps.length < 40 },
        })),
      ],
    },
    data,
    el,
  );
  return plot;
}

// points: [{t: ms, v}] drawn over time.
export function timeChart(el, title, label, points, opts = {}) {
  const xs = points.map((p) => p.t / 1000);
  const ys = points.map((p) => p.v);
  return new uPlot(
    {
      title,
      width: width(el),
      height: opts.height || 200,
      series: [{}, { label, stroke: opts.color || color(0), width: 2, fill: "rgba(37,99,235,0.08)", points: { size: 7 } }],
    },
    [xs, ys],
    el,
  );
}
