//! The results: a table on stdout, JSON, and an SVG picture.

use serde::Serialize;
use std::fmt::Write;

/// One measured figure, with the raw-SQLite anchor it is compared to.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub anchor: Option<(String, f64)>,
    /// `value / anchor` (or `anchor / value` for figures where lower is better).
    pub ratio: Option<f64>,
    /// The goal for the ratio, and whether it was met.
    pub goal: Option<String>,
    pub met: Option<bool>,
}

impl Figure {
    pub fn plain(name: &str, value: f64, unit: &str) -> Self {
        Figure { name: name.into(), value, unit: unit.into(), anchor: None, ratio: None, goal: None, met: None }
    }

    fn against(
        name: &str,
        value: f64,
        unit: &str,
        anchor: (&str, f64),
        goal: String,
        met: impl Fn(f64) -> bool,
    ) -> Self {
        let ratio = value / anchor.1;
        Figure {
            name: name.into(),
            value,
            unit: unit.into(),
            anchor: Some((anchor.0.into(), anchor.1)),
            ratio: Some(ratio),
            goal: Some(goal),
            met: Some(met(ratio)),
        }
    }

    /// A ratio to an anchor, with no goal: where a figure stands.
    pub fn compared(name: &str, value: f64, unit: &str, anchor: (&str, f64)) -> Self {
        Figure {
            name: name.into(),
            value,
            unit: unit.into(),
            anchor: Some((anchor.0.into(), anchor.1)),
            ratio: Some(value / anchor.1),
            goal: None,
            met: None,
        }
    }

    /// Higher is better: ratio = value / anchor, goal = minimum ratio.
    pub fn at_least(name: &str, value: f64, unit: &str, anchor: (&str, f64), min_ratio: f64) -> Self {
        Self::against(name, value, unit, anchor, format!("≥ {:.0} %", min_ratio * 100.0), |r| r >= min_ratio)
    }

    /// Lower is better: ratio = value / anchor, goal = maximum ratio.
    pub fn at_most(name: &str, value: f64, unit: &str, anchor: (&str, f64), max_ratio: f64) -> Self {
        Self::against(name, value, unit, anchor, format!("≤ {max_ratio}×"), |r| r <= max_ratio)
    }

    /// An absolute limit (e.g. memory, a page time).
    pub fn below(name: &str, value: f64, unit: &str, limit: f64) -> Self {
        Figure {
            name: name.into(),
            value,
            unit: unit.into(),
            anchor: None,
            ratio: None,
            goal: Some(format!("< {limit} {unit}")),
            met: Some(value < limit),
        }
    }
}

fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

pub fn table(figures: &[Figure]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| figure | value | raw anchor | ratio | goal | met |");
    let _ = writeln!(out, "|---|---:|---|---:|---|---|");
    for f in figures {
        let anchor = f.anchor.as_ref().map(|(n, v)| format!("{n}: {}", num(*v))).unwrap_or_default();
        let ratio = f.ratio.map(|r| format!("{:.1} %", r * 100.0)).unwrap_or_default();
        let met = match f.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        let _ = writeln!(
            out,
            "| {} | {} {} | {anchor} | {ratio} | {} | {met} |",
            f.name,
            num(f.value),
            f.unit,
            f.goal.clone().unwrap_or_default()
        );
    }
    out
}

/// One bar: label, value, unit.
pub type Bar = (String, f64, String);

/// Horizontal bars, one group per panel, each scaled to its own maximum.
pub fn svg(groups: &[(&str, Vec<Bar>)]) -> String {
    let width = 860.0;
    let bar_h = 22.0;
    let label_w = 300.0;
    let mut y = 62.0;
    let mut body = String::new();
    for (title, bars) in groups {
        let _ = writeln!(body, r#"<text x="10" y="{y}" font-size="15" font-weight="bold">{}</text>"#, esc(title));
        y += 10.0;
        let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(f64::MIN_POSITIVE);
        for (i, (label, value, unit)) in bars.iter().enumerate() {
            let w = (width - label_w - 170.0) * value / max;
            let colour = if i == 0 {
                "#8b98a9"
            } else if label.contains("by hand") {
                "#d29922"
            } else {
                "#1f6feb"
            };
            let _ = writeln!(body, r#"<text x="10" y="{}" font-size="12">{}</text>"#, y + 15.0, esc(label));
            let _ = writeln!(
                body,
                r#"<rect x="{label_w}" y="{}" width="{w:.1}" height="{}" fill="{colour}" rx="3"/>"#,
                y + 2.0,
                bar_h - 6.0
            );
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{}" font-size="12">{} {}</text>"#,
                label_w + w + 6.0,
                y + 15.0,
                num(*value),
                esc(unit)
            );
            y += bar_h;
        }
        y += 26.0;
    }
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/><text x="10" y="22" font-size="17">Integration bus vs raw SQLite</text><text x="10" y="40" font-size="12">grey: raw SQLite anchor · amber: the same rows written by hand into the bus's tables · blue: the bus</text>
{body}</svg>
"#
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
