//! A hand-written SVG of a run: latency by percentile (the HdrHistogram way: the x axis stretches the tail,
//! 90% → 99% → 99.9% … at equal steps; the y axis is logarithmic), and throughput with the server's CPU use
//! over time. No plotting crate: a few hundred bytes of markup per series.

use crate::report::Report;
use std::fmt::Write as _;

const W: f64 = 900.0;
const PANEL_H: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 45.0;
const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The plot of `report` as an SVG document.
pub(crate) fn plot(report: &Report) -> String {
    let mut svg = String::new();
    let height = 2.0 * PANEL_H + 20.0;
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    latency_panel(&mut svg, report, 0.0);
    timeline_panel(&mut svg, report, PANEL_H + 20.0);
    svg.push_str("</svg>\n");
    svg
}

/// x position of percentile `p` (0–100): log10(1/(1-q)), capped at 5 nines.
fn nines(p: f64) -> f64 {
    let q = (p / 100.0).min(0.99999);
    (1.0 / (1.0 - q)).log10()
}

fn latency_panel(svg: &mut String, report: &Report, y0: f64) {
    let (x0, x1) = (LEFT, W - RIGHT);
    let (top, bottom) = (y0 + TOP, y0 + PANEL_H - BOTTOM);
    let title = format!("palaver bench {}: latency by percentile", report.scenario.name());
    let _ =
        writeln!(svg, r#"<text x="{x0}" y="{}" font-size="15" font-weight="bold">{}</text>"#, y0 + 22.0, esc(&title));
    let spectra: Vec<(&str, &[(f64, f64)])> = report.spectra().filter(|(_, s)| !s.is_empty()).collect();
    if spectra.is_empty() {
        let _ = writeln!(svg, r#"<text x="{x0}" y="{}">no latencies recorded</text>"#, (top + bottom) / 2.0);
        return;
    }
    let max_ms = spectra.iter().flat_map(|(_, s)| s.iter().map(|p| p.1)).fold(0.0f64, f64::max).max(0.01);
    let min_ms = spectra.iter().flat_map(|(_, s)| s.iter().map(|p| p.1)).fold(f64::MAX, f64::min).max(0.001);
    let (lo, hi) = (min_ms.log10().floor(), max_ms.log10().ceil().max(min_ms.log10().floor() + 1.0));
    let y = |ms: f64| bottom - (ms.max(10f64.powf(lo)).log10() - lo) / (hi - lo) * (bottom - top);
    let max_x = 5.0;
    let x = |p: f64| x0 + nines(p) / max_x * (x1 - x0);
    axes(svg, x0, x1, top, bottom);
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"].iter().enumerate() {
        let xi = x0 + i as f64 / max_x * (x1 - x0);
        grid_v(svg, xi, top, bottom);
        let _ = writeln!(svg, r#"<text x="{xi}" y="{}" text-anchor="middle">{label}</text>"#, bottom + 16.0);
    }
    let mut e = lo;
    while e <= hi {
        let ms = 10f64.powf(e);
        let yi = y(ms);
        grid_h(svg, x0, x1, yi);
        let label = if ms >= 1.0 { format!("{ms:.0}") } else { format!("{ms}") };
        let _ = writeln!(svg, r#"<text x="{}" y="{}" text-anchor="end">{label}</text>"#, x0 - 6.0, yi + 4.0);
        e += 1.0;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">ms (log)</text>"#,
        x0 - 50.0,
        (top + bottom) / 2.0,
        x0 - 50.0,
        (top + bottom) / 2.0
    );
    let _ =
        writeln!(svg, r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#, (x0 + x1) / 2.0, bottom + 34.0);
    for (i, (name, points)) in spectra.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = points.iter().map(|(p, ms)| format!("{:.1},{:.1}", x(*p), y(*ms))).collect();
        let _ =
            writeln!(svg, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, path.join(" "));
        legend(svg, x0 + 10.0, top + 8.0 + 16.0 * i as f64, color, name.trim_end_matches("_ms"));
    }
}

fn timeline_panel(svg: &mut String, report: &Report, y0: f64) {
    let (x0, x1) = (LEFT, W - RIGHT);
    let (top, bottom) = (y0 + TOP, y0 + PANEL_H - BOTTOM);
    let _ = writeln!(
        svg,
        r#"<text x="{x0}" y="{}" font-size="15" font-weight="bold">throughput and CPU</text>"#,
        y0 + 22.0
    );
    let points = &report.timeline;
    if points.is_empty() {
        let _ = writeln!(svg, r#"<text x="{x0}" y="{}">run too short for a timeline</text>"#, (top + bottom) / 2.0);
        return;
    }
    let t_max = points.iter().map(|p| p.t_secs).fold(1.0f64, f64::max);
    let rate_max = nice(points.iter().map(|p| p.ok_per_sec.max(p.delivered_per_sec)).fold(1.0f64, f64::max));
    let cpu_max = nice(
        points.iter().flat_map(|p| p.server_cpu_pct.into_iter().chain([p.client_cpu_pct])).fold(100.0f64, f64::max),
    );
    let x = |t: f64| x0 + t / t_max * (x1 - x0);
    let y_rate = |r: f64| bottom - r / rate_max * (bottom - top);
    let y_cpu = |c: f64| bottom - c / cpu_max * (bottom - top);
    axes(svg, x0, x1, top, bottom);
    for i in 0..=5 {
        let f = i as f64 / 5.0;
        let yi = bottom - f * (bottom - top);
        grid_h(svg, x0, x1, yi);
        let _ =
            writeln!(svg, r#"<text x="{}" y="{}" text-anchor="end">{:.0}</text>"#, x0 - 6.0, yi + 4.0, f * rate_max);
        let _ = writeln!(svg, r#"<text x="{}" y="{}">{:.0}%</text>"#, x1 + 6.0, yi + 4.0, f * cpu_max);
        let ti = f * t_max;
        let _ = writeln!(svg, r#"<text x="{}" y="{}" text-anchor="middle">{ti:.0}</text>"#, x(ti), bottom + 16.0);
    }
    let _ = writeln!(svg, r#"<text x="{}" y="{}" text-anchor="middle">seconds</text>"#, (x0 + x1) / 2.0, bottom + 34.0);
    let series: [Series; 4] = [
        ("completed/s", points.iter().map(|p| (x(p.t_secs), y_rate(p.ok_per_sec))).collect()),
        ("delivered/s", points.iter().map(|p| (x(p.t_secs), y_rate(p.delivered_per_sec))).collect()),
        (
            "server CPU % (right axis)",
            points.iter().filter_map(|p| p.server_cpu_pct.map(|c| (x(p.t_secs), y_cpu(c)))).collect(),
        ),
        ("load generator CPU % (right axis)", points.iter().map(|p| (x(p.t_secs), y_cpu(p.client_cpu_pct))).collect()),
    ];
    let mut shown = 0;
    for (i, (name, pts)) in series.iter().enumerate() {
        if pts.is_empty() || (i == 1 && points.iter().all(|p| p.delivered_per_sec == 0.0)) {
            continue;
        }
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
        let dash = if i >= 2 { r#" stroke-dasharray="5,3""# } else { "" };
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
            path.join(" ")
        );
        legend(svg, x0 + 10.0, top + 8.0 + 16.0 * shown as f64, color, name);
        shown += 1;
    }
}

/// A named line of (x, y) pixels.
type Series = (&'static str, Vec<(f64, f64)>);

/// A round upper bound for an axis.
fn nice(max: f64) -> f64 {
    let e = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * e >= max {
            return m * e;
        }
    }
    10.0 * e
}

fn axes(svg: &mut String, x0: f64, x1: f64, top: f64, bottom: f64) {
    let _ = writeln!(
        svg,
        r##"<rect x="{x0}" y="{top}" width="{}" height="{}" fill="none" stroke="#444"/>"##,
        x1 - x0,
        bottom - top
    );
}

fn grid_h(svg: &mut String, x0: f64, x1: f64, y: f64) {
    let _ = writeln!(svg, r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#ddd"/>"##);
}

fn grid_v(svg: &mut String, x: f64, top: f64, bottom: f64) {
    let _ = writeln!(svg, r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#ddd"/>"##);
}

fn legend(svg: &mut String, x: f64, y: f64, color: &str, name: &str) {
    let _ = writeln!(svg, r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="3"/>"#, x + 18.0);
    let _ = writeln!(svg, r#"<text x="{}" y="{}">{}</text>"#, x + 24.0, y + 4.0, esc(name));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_and_nice_bounds() {
        assert!((nines(90.0) - 1.0).abs() < 1e-9);
        assert!((nines(99.9) - 3.0).abs() < 1e-6);
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(130.0), 200.0);
        assert_eq!(nice(100.0), 100.0);
    }
}
