//! `tandem bench --svg FILE`: the run as a chart. One band per benchmark, one bar per
//! implementation (tandem first, then its peers, CPython included), on a logarithmic
//! ns-per-operation axis; the machine's CPU model in the caption.

use std::collections::BTreeMap;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Figures;

/// Colours by implementation, tandem's the strongest; unknown names cycle through the rest.
const PALETTE: &[(&str, RGBColor)] = &[
    ("tandem", RGBColor(214, 39, 40)),
    ("std", RGBColor(31, 119, 180)),
    ("parking_lot", RGBColor(255, 127, 14)),
    ("crossbeam", RGBColor(44, 160, 44)),
    ("flume", RGBColor(148, 103, 189)),
    ("rayon", RGBColor(140, 86, 75)),
    ("threadpool", RGBColor(227, 119, 194)),
    ("cpython", RGBColor(127, 127, 127)),
    ("ipc-channel", RGBColor(188, 189, 34)),
    ("pthread", RGBColor(23, 190, 207)),
];

fn colour(name: &str, nth: usize) -> RGBColor {
    PALETTE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
        .unwrap_or(PALETTE[1 + nth % (PALETTE.len() - 1)].1)
}

/// The CPU model from `/proc/cpuinfo` ("model name"), or "unknown CPU".
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The chart of `figures` (in run order) as an SVG document.
pub(crate) fn svg(figures: &[Figures], cpu: &str) -> Result<String, String> {
    // Benchmarks in run order, each with its implementations in run order.
    let mut benches: Vec<(&str, Vec<&Figures>)> = Vec::new();
    for f in figures {
        match benches.iter_mut().find(|(b, _)| *b == f.bench) {
            Some((_, row)) => row.push(f),
            None => benches.push((f.bench, vec![f])),
        }
    }
    if benches.is_empty() {
        return Err("nothing was measured, so there is nothing to draw".into());
    }
    let mut impls: BTreeMap<&str, usize> = BTreeMap::new(); // name -> order of first sight
    for f in figures {
        let next = impls.len();
        impls.entry(f.implementation).or_insert(next);
    }
    let mut order: Vec<&str> = impls.keys().copied().collect();
    order.sort_by_key(|n| impls[n]);

    let lo = figures
        .iter()
        .map(|f| f.ns_per_op)
        .fold(f64::MAX, f64::min)
        .max(0.01);
    let hi = figures
        .iter()
        .map(|f| f.ns_per_op)
        .fold(0.0, f64::max)
        .max(lo * 10.0);
    let bar = 9.0_f64; // px per bar
    let band = |row: &Vec<&Figures>| row.len() as f64 * bar + 12.0;
    let height = 140.0 + benches.iter().map(|(_, row)| band(row)).sum::<f64>();

    // y runs downward in "bench units": bench i occupies [i, i + 1).
    let n = benches.len() as f64;

    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (1100, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let caption =
            format!("tandem bench: ns per operation (log scale, shorter is faster) on {cpu}");
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(250)
            .build_cartesian_2d((lo / 2.0..hi * 2.0).log_scale(), n..0.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc("ns per operation")
            .x_label_formatter(&|ns| super::fmt_ns(*ns))
            .draw()
            .map_err(|e| e.to_string())?;
        // The benchmark names, right-aligned against the plot, each beside its band.
        let label = ("sans-serif", 13)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (i, (name, _)) in benches.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(lo / 2.0, i as f64 + 0.5));
            root.draw(&Text::new(*name, (x - 8, y), label.clone()))
                .map_err(|e| e.to_string())?;
        }
        for (nth, name) in order.iter().enumerate() {
            let colour = colour(name, nth);
            let bars = benches.iter().enumerate().filter_map(|(i, (_, row))| {
                let k = row.iter().position(|f| f.implementation == *name)?;
                let step = 0.9 / row.len() as f64;
                let top = i as f64 + 0.05 + k as f64 * step;
                let ns = row[k].ns_per_op;
                Some(Rectangle::new(
                    [(lo / 2.0, top), (ns, top + step * 0.9)],
                    colour.filled(),
                ))
            });
            chart
                .draw_series(bars)
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(bench: &'static str, implementation: &'static str, ns: f64) -> Figures {
        Figures {
            bench,
            implementation,
            ns_per_op: ns,
            min: ns,
            max: ns,
            runs: 1,
        }
    }

    #[test]
    fn names_every_benchmark_and_implementation() {
        let figures = [
            fig("lock.uncontended", "tandem", 4.0),
            fig("lock.uncontended", "std", 5.0),
            fig("lock.uncontended", "cpython", 60.0),
            fig("queue.spsc", "tandem", 90.0),
            fig("queue.spsc", "flume", 120.0),
        ];
        let svg = svg(&figures, "Test CPU @ 1 GHz").unwrap();
        for name in [
            "lock.uncontended",
            "queue.spsc",
            "tandem",
            "std",
            "cpython",
            "flume",
        ] {
            assert!(svg.contains(name), "{name} missing from the chart");
        }
        assert!(svg.contains("Test CPU @ 1 GHz"));
        assert!(svg.trim_start().starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn nothing_measured_is_an_error() {
        assert!(svg(&[], "cpu").is_err());
    }
}
