//! The export's PDF summary: one A4 page per rep with their figures, a small chart of what became
//! of their planned visits, and their worst findings (suspect visits, missed planned visits).
//! Text is set in the PDF's built-in Helvetica (nothing embedded, nothing fetched); characters
//! outside Latin-1 print as `?` (names in other scripts are in the workbook).

use crate::domain::compliance::PeriodTotals;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

/// Findings kept per rep and kind.
pub const FINDINGS: usize = 5;

/// A suspect visit, as the summary lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Suspect {
    pub arrival: DateTime<Utc>,
    pub outlet_code: String,
    pub risk_score: f32,
}

/// A missed planned visit, as the summary lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Missed {
    pub day: NaiveDate,
    pub seq: i32,
    pub outlet_code: String,
}

/// One rep's page.
#[derive(Debug, Clone, Default)]
pub struct RepPage {
    pub login: String,
    pub name: String,
    pub territory_code: Option<String>,
    pub totals: PeriodTotals,
    /// The riskiest suspect visits (at most [`FINDINGS`]).
    pub suspects: Vec<Suspect>,
    /// The first missed planned visits (at most [`FINDINGS`]).
    pub missed: Vec<Missed>,
}

impl RepPage {
    /// Keeps `s` if it is among the riskiest [`FINDINGS`] seen (earlier first on ties).
    pub fn add_suspect(&mut self, s: Suspect) {
        self.suspects.push(s);
        self.suspects.sort_by(|a, b| b.risk_score.total_cmp(&a.risk_score).then(a.arrival.cmp(&b.arrival)));
        self.suspects.truncate(FINDINGS);
    }

    pub fn add_missed(&mut self, m: Missed) {
        if self.missed.len() < FINDINGS {
            self.missed.push(m);
        }
    }
}

/// What every page's header and footer say.
pub struct Meta<'a> {
    pub export_id: i64,
    pub scope: &'a str,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub generated_at: DateTime<Utc>,
    pub generated_by: &'a str,
    pub data_sha256: &'a str,
}

/// Latin-1 bytes of `s` (the built-in fonts' `WinAnsiEncoding` covers it); others become `?`.
fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok().filter(|b| *b >= 0x20).unwrap_or(b'?')).collect()
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}%"))
}

fn hm(s: i64) -> String {
    format!("{}:{:02}", s / 3600, (s % 3600) / 60)
}

struct Page {
    content: Content,
}

impl Page {
    fn text(&mut self, font: &[u8], size: f32, x: f32, y: f32, s: &str) {
        let bytes = latin1(s);
        self.content.begin_text();
        self.content.set_font(Name(font), size);
        self.content.next_line(x, y);
        self.content.show(Str(&bytes));
        self.content.end_text();
    }

    fn bar(&mut self, x: f32, y: f32, w: f32, h: f32, rgb: (f32, f32, f32)) {
        self.content.set_fill_rgb(rgb.0, rgb.1, rgb.2);
        self.content.rect(x, y, w.max(0.5), h);
        self.content.fill_nonzero();
        self.content.set_fill_rgb(0.0, 0.0, 0.0);
    }
}

/// The rows of figures of a page: (label, value).
pub fn figure_rows(t: &PeriodTotals) -> Vec<(&'static str, String)> {
    vec![
        ("Plan compliance", pct(t.plan_compliance_pct)),
        ("Planned visits", t.planned.to_string()),
        ("Done", t.done.to_string()),
        ("Late", t.late.to_string()),
        ("Short", t.short.to_string()),
        ("Missed", t.missed.to_string()),
        ("Visits", t.visits.to_string()),
        ("Valid visits", t.valid_visits.to_string()),
        ("Unplanned visits", t.unplanned_visits.to_string()),
        ("Verified rate", pct(t.verified_rate_pct)),
        ("Suspect visits", t.suspect_visits.to_string()),
        ("Time in market (h:mm)", hm(t.time_in_market_s)),
        ("In-store time (h:mm)", hm(t.in_store_s)),
        ("Travel time (h:mm)", hm(t.travel_s)),
        ("Distance travelled (km)", format!("{:.1}", t.distance_m / 1000.0)),
        ("Days in market", t.days_in_market.to_string()),
    ]
}

/// The PDF, one page per rep (a page saying so when there is none).
pub fn summary(pages: &[RepPage], meta: &Meta<'_>) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let empty = [RepPage { login: "-".into(), name: "No active rep in this scope".into(), ..RepPage::default() }];
    let pages = if pages.is_empty() { &empty[..] } else { pages };
    let ids: Vec<(Ref, Ref)> =
        (0..pages.len()).map(|i| (Ref::new(5 + 2 * i as i32), Ref::new(6 + 2 * i as i32))).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(ids.iter().map(|(p, _)| *p)).count(pages.len() as i32);
    pdf.type1_font(regular).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    for (rep, (page_id, content_id)) in pages.iter().zip(&ids) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0));
        page.parent(tree);
        page.contents(*content_id);
        page.resources().fonts().pair(Name(b"F1"), regular).pair(Name(b"F2"), bold);
        page.finish();
        let mut p = Page { content: Content::new() };
        p.text(b"F2", 16.0, 50.0, 790.0, &format!("{} ({})", rep.name, rep.login));
        let territory = rep.territory_code.as_deref().unwrap_or("-");
        p.text(
            b"F1",
            10.0,
            50.0,
            772.0,
            &format!(
                "Territory {territory} - {} to {} - audit export {} of {}",
                meta.from, meta.to, meta.export_id, meta.scope
            ),
        );
        let mut y = 740.0;
        for (label, value) in figure_rows(&rep.totals) {
            p.text(b"F1", 11.0, 50.0, y, label);
            p.text(b"F2", 11.0, 230.0, y, &value);
            y -= 16.0;
        }
        // What became of the planned visits, to scale.
        let t = &rep.totals;
        let most = [t.done, t.late, t.short, t.missed].into_iter().max().unwrap_or(0).max(1) as f32;
        p.text(b"F2", 11.0, 330.0, 740.0, "Planned visits");
        let outcomes = [
            ("done", t.done, (0.0, 0.62, 0.45)),
            ("late", t.late, (0.90, 0.62, 0.0)),
            ("short", t.short, (0.34, 0.71, 0.91)),
            ("missed", t.missed, (0.84, 0.37, 0.0)),
        ];
        for (i, (label, n, rgb)) in outcomes.into_iter().enumerate() {
            let by = 716.0 - i as f32 * 20.0;
            p.text(b"F1", 10.0, 330.0, by + 3.0, label);
            p.bar(380.0, by, 150.0 * n as f32 / most, 12.0, rgb);
            p.text(b"F1", 10.0, 385.0 + 150.0 * n as f32 / most, by + 3.0, &n.to_string());
        }
        y -= 14.0;
        p.text(b"F2", 12.0, 50.0, y, "Worst findings");
        y -= 18.0;
        if rep.suspects.is_empty() && rep.missed.is_empty() {
            p.text(b"F1", 10.0, 50.0, y, "None: no suspect visit, no missed planned visit.");
        }
        for s in &rep.suspects {
            let at = s.arrival.to_rfc3339_opts(SecondsFormat::Secs, true);
            p.text(
                b"F1",
                10.0,
                50.0,
                y,
                &format!("Suspect visit at {} on {at}, risk {:.2}", s.outlet_code, s.risk_score),
            );
            y -= 14.0;
        }
        for m in &rep.missed {
            p.text(
                b"F1",
                10.0,
                50.0,
                y,
                &format!("Missed planned visit {} on {} (stop {})", m.outlet_code, m.day, m.seq),
            );
            y -= 14.0;
        }
        let generated = meta.generated_at.to_rfc3339_opts(SecondsFormat::Secs, true);
        p.text(
            b"F1",
            7.0,
            50.0,
            48.0,
            &format!(
                "Generated {generated} by {}. Figures as defined in the workbook's Definitions sheet.",
                meta.generated_by
            ),
        );
        p.text(
            b"F1",
            7.0,
            50.0,
            38.0,
            &format!("Underlying data SHA-256 {} (see the export's manifest).", meta.data_sha256),
        );
        let data = p.content.finish();
        pdf.stream(*content_id, &data);
    }
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_keep_the_riskiest_and_the_first_missed() {
        let t = Utc::now();
        let mut p = RepPage::default();
        for (i, risk) in [0.5f32, 0.9, 0.6, 0.7, 0.55, 0.8, 0.65].into_iter().enumerate() {
            p.add_suspect(Suspect { arrival: t, outlet_code: format!("O{i}"), risk_score: risk });
        }
        let risks: Vec<f32> = p.suspects.iter().map(|s| s.risk_score).collect();
        assert_eq!(risks, vec![0.9, 0.8, 0.7, 0.65, 0.6]);
        for seq in 1..9 {
            p.add_missed(Missed { day: t.date_naive(), seq, outlet_code: "X".into() });
        }
        assert_eq!(p.missed.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_summary_is_a_pdf_with_a_page_per_rep() {
        let meta = Meta {
            export_id: 1,
            scope: "territory BJ",
            from: NaiveDate::MIN,
            to: NaiveDate::MIN,
            generated_at: Utc::now(),
            generated_by: "auditor",
            data_sha256: "ab",
        };
        let pages = vec![RepPage { login: "r1".into(), name: "Rép 1 李".into(), ..RepPage::default() }; 3];
        let bytes = summary(&pages, &meta);
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.matches("/Type /Page").count() - text.matches("/Type /Pages").count(), 3, "{text}");
        assert_eq!(latin1("Rép 李"), b"R\xe9p ?".to_vec());
    }
}
