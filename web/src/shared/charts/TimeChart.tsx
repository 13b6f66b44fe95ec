// A small time-series chart in SVG: lines or stacked bars, an axis, a legend, a hover readout,
// and the numbers as a table for screen readers.
import { useId, useMemo, useState } from 'react';
import { formatTime } from '@/shared/lib/format';
import { axis } from './scale';
import { useWidth } from './useWidth';

export interface Series {
  name: string;
  /** A CSS colour, e.g. `var(--chart-1)`. */
  color: string;
  /** One value per bucket (null: no data). */
  values: (number | null)[];
}

export interface TimeChartProps {
  title: string;
  /** Start of each bucket, epoch ms. */
  times: number[];
  series: Series[];
  kind?: 'line' | 'bars';
  format?: (v: number) => string;
  height?: number;
  emptyText?: string;
  /** Fix the top of the axis (e.g. 1 for ratios). */
  max?: number;
  /** Values are counts: whole-number ticks. */
  integer?: boolean;
  /** A line under the legend, e.g. how the data was gathered. */
  note?: string;
}

const M = { top: 10, right: 12, bottom: 22, left: 48 };

export function TimeChart({
  title,
  times,
  series,
  kind = 'line',
  format = (v) => String(Math.round(v)),
  height = 180,
  emptyText = 'No data in this window.',
  max,
  integer = false,
  note,
}: TimeChartProps) {
  const [ref, width] = useWidth<HTMLDivElement>();
  const [hover, setHover] = useState<number | null>(null);
  const titleId = useId();
  const n = times.length;
  const innerW = Math.max(10, width - M.left - M.right);
  const innerH = height - M.top - M.bottom;

  const { top, ticks } = useMemo(() => {
    let m = max ?? 0;
    if (max === undefined) {
      if (kind === 'bars') {
        for (let i = 0; i < n; i++) m = Math.max(m, series.reduce((s, se) => s + (se.values[i] ?? 0), 0));
      } else {
        for (const se of series) for (const v of se.values) if (v !== null) m = Math.max(m, v);
      }
    }
    return axis(m, { integer });
  }, [series, kind, n, max, integer]);

  // Zeros are data (nothing failed); only an all-null series has nothing to draw.
  const hasData = series.some((s) => s.values.some((v) => v !== null));
  const allQuiet = !series.some((s) => s.values.some((v) => v !== null && v !== 0));
  const x = (i: number) => M.left + (n <= 1 ? innerW / 2 : (i / (n - 1)) * innerW);
  const barW = Math.max(1, innerW / Math.max(n, 1) - 1);
  const xBar = (i: number) => M.left + (i / Math.max(n, 1)) * innerW;
  const y = (v: number) => M.top + innerH - (Math.min(v, top) / top) * innerH;
  const labelEvery = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(innerW / 70))));

  const onMove = (e: React.MouseEvent<SVGSVGElement>) => {
    const rect = e.currentTarget.getBoundingClientRect();
    const px = e.clientX - rect.left - M.left;
    const i = kind === 'bars' ? Math.floor((px / innerW) * n) : Math.round((px / innerW) * (n - 1));
    setHover(i >= 0 && i < n ? i : null);
  };

  return (
    <figure className="chart" aria-labelledby={titleId}>
      <figcaption id={titleId} className="chart-title">
        {title}
      </figcaption>
      <div className="chart-legend" aria-hidden="true">
        {series.map((s) => (
          <span key={s.name}>
            <i style={{ background: s.color }} />
            {s.name}
            {hover !== null && s.values[hover] !== null && s.values[hover] !== undefined ? `: ${format(s.values[hover]!)}` : ''}
          </span>
        ))}
        {hover !== null && times[hover] !== undefined && <span className="muted">at {formatTime(times[hover]!)}</span>}
      </div>
      {note && <p className="chart-note">{note}</p>}
      <div ref={ref} className="chart-body">
        <svg width={width} height={height} role="img" aria-label={`${title} chart`} onMouseMove={onMove} onMouseLeave={() => setHover(null)}>
          {ticks.map((t) => (
            <g key={t}>
              <line className="grid" x1={M.left} x2={M.left + innerW} y1={y(t)} y2={y(t)} />
              {hasData && (
                <text className="axis" x={M.left - 6} y={y(t)} dy="0.32em" textAnchor="end">
                  {format(t)}
                </text>
              )}
            </g>
          ))}
          {times.map((t, i) =>
            i % labelEvery === 0 ? (
              <text key={t} className="axis" x={kind === 'bars' ? xBar(i) + barW / 2 : x(i)} y={height - 6} textAnchor="middle">
                {formatTime(t)}
              </text>
            ) : null,
          )}
          {kind === 'bars'
            ? times.map((_, i) => {
                let base = 0;
                return (
                  <g key={i}>
                    {series.map((s) => {
                      const v = s.values[i] ?? 0;
                      if (v <= 0) return null;
                      const y0 = y(base);
                      base += v;
                      const y1 = y(base);
                      return <rect key={s.name} x={xBar(i)} y={y1} width={barW} height={Math.max(0, y0 - y1)} style={{ fill: s.color }} />;
                    })}
                  </g>
                );
              })
            : !hasData
              ? null
              : series.map((s) => {
                let d = '';
                let pen = false;
                s.values.forEach((v, i) => {
                  if (v === null) {
                    pen = false;
                    return;
                  }
                  d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
                  pen = true;
                });
                const lone = s.values.map((v, i) => (v !== null && s.values[i - 1] == null && s.values[i + 1] == null ? i : -1)).filter((i) => i >= 0);
                return (
                  <g key={s.name}>
                    <path d={d} className="line" style={{ stroke: s.color }} />
                    {lone.map((i) => (
                      <circle key={i} cx={x(i)} cy={y(s.values[i]!)} r={2.5} style={{ fill: s.color }} />
                    ))}
                  </g>
                );
              })}
          {hover !== null && <line className="hover-line" x1={kind === 'bars' ? xBar(hover) + barW / 2 : x(hover)} x2={kind === 'bars' ? xBar(hover) + barW / 2 : x(hover)} y1={M.top} y2={M.top + innerH} />}
          {allQuiet && (
            <text className="chart-empty" x={M.left + innerW / 2} y={M.top + innerH / 2} textAnchor="middle">
              {emptyText}
            </text>
          )}
        </svg>
      </div>
      <table className="visually-hidden">
        <caption>{title}</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            {series.map((s) => (
              <th key={s.name} scope="col">
                {s.name}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {times.map((t, i) =>
            series.some((s) => s.values[i] !== null && s.values[i] !== 0) ? (
              <tr key={t}>
                <th scope="row">{formatTime(t)}</th>
                {series.map((s) => (
                  <td key={s.name}>{s.values[i] === null || s.values[i] === undefined ? '—' : format(s.values[i]!)}</td>
                ))}
              </tr>
            ) : null,
          )}
        </tbody>
      </table>
    </figure>
  );
}
