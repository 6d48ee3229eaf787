//! The export's PDF summary: one A4 page per rep with their figures, a small chart of what became
//! of their planned visits, and their worst findings (suspect visits, missed planned visits).
//! Text is set in the PDF's built-in Helvetica (nothing fetched). A run holding characters outside
//! Latin-1 (Chinese names) is set in a CJK font read at run time from [`font_path`]
//! (`FV_PDF_FONT`, default Debian's Noto Sans CJK): a subset holding only the glyphs used is
//! embedded as a CID font with a `ToUnicode` map, so the text extracts. Without that font such
//! characters print as `?`, as before (the workbook has every name as written).

use crate::domain::compliance::PeriodTotals;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, TextRenderingMode, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use subsetter::GlyphRemapper;

/// Where the CJK font is looked for unless `FV_PDF_FONT` says otherwise (Debian `fonts-noto-cjk`,
/// SIL Open Font License; CFF outlines, a collection whose Simplified Chinese face is used).
pub const DEFAULT_FONT: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";

static FONT_PATH: OnceLock<PathBuf> = OnceLock::new();
static FONT_MISSING_LOGGED: AtomicBool = AtomicBool::new(false);

/// Sets the CJK font's path (`FV_PDF_FONT`); the first call wins, [`DEFAULT_FONT`] without one.
pub fn set_font_path(path: PathBuf) {
    let _ = FONT_PATH.set(path);
}

/// The CJK font's path in force.
pub fn font_path() -> &'static Path {
    FONT_PATH.get_or_init(|| PathBuf::from(DEFAULT_FONT))
}

/// A font file (OpenType or TrueType, or a collection and the face chosen in it) for the runs
/// Helvetica cannot set.
pub struct CjkFont {
    data: Vec<u8>,
    index: u32,
}

impl CjkFont {
    /// Reads and checks the font at `path`; in a collection, takes the Simplified Chinese face
    /// (family name ending in "SC") when there is one, else the first.
    pub fn load(path: &Path) -> Result<Self, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let faces = ttf_parser::fonts_in_collection(&data).unwrap_or(1);
        let family = |i: u32| {
            let face = ttf_parser::Face::parse(&data, i).ok()?;
            face.names()
                .into_iter()
                .filter(|n| n.name_id == ttf_parser::name_id::FAMILY && n.is_unicode())
                .find_map(|n| n.to_string())
        };
        let index = (0..faces).find(|i| family(*i).is_some_and(|f| f.ends_with(" SC"))).unwrap_or(0);
        let face = ttf_parser::Face::parse(&data, index).map_err(|e| format!("{}: {e}", path.display()))?;
        if face.glyph_index('中').is_none() {
            return Err(format!("{}: no Chinese glyphs", path.display()));
        }
        Ok(Self { data, index })
    }

    /// The font at [`font_path`], or `None` (logged once per process) when it cannot be used.
    pub fn configured() -> Option<Self> {
        match Self::load(font_path()) {
            Ok(f) => Some(f),
            Err(e) => {
                if !FONT_MISSING_LOGGED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "no CJK font for the PDF summary (FV_PDF_FONT): non-Latin-1 text prints as ?");
                }
                None
            }
        }
    }
}

/// The glyphs of a [`CjkFont`] a summary uses, numbered as in the embedded subset.
struct CjkRuns<'f> {
    font: &'f CjkFont,
    face: ttf_parser::Face<'f>,
    remap: GlyphRemapper,
    /// New glyph id → the character it shows (for the `ToUnicode` map).
    chars: BTreeMap<u16, char>,
}

impl<'f> CjkRuns<'f> {
    fn new(font: &'f CjkFont) -> Option<Self> {
        let face = ttf_parser::Face::parse(&font.data, font.index).ok()?;
        Some(Self { font, face, remap: GlyphRemapper::new(), chars: BTreeMap::new() })
    }

    /// `s` as two-byte glyph ids of the subset (Identity-H).
    fn encode(&mut self, s: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 * s.len());
        for c in s.chars() {
            let old = self.face.glyph_index(c).map_or(0, |g| g.0);
            let new = self.remap.remap(old);
            if old != 0 {
                self.chars.entry(new).or_insert(c);
            }
            out.extend_from_slice(&new.to_be_bytes());
        }
        out
    }

    fn used(&self) -> bool {
        !self.chars.is_empty()
    }

    /// Writes the Type 0 font `font_id` (and its descendant, descriptor, file and `ToUnicode` map
    /// at the next four references) holding the glyphs used.
    fn write(&self, pdf: &mut Pdf, font_id: Ref) -> Result<(), String> {
        let subset = subsetter::subset(&self.font.data, self.font.index, &self.remap).map_err(|e| format!("{e:?}"))?;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&subset).map_err(|e| e.to_string())?;
        let packed = z.finish().map_err(|e| e.to_string())?;
        let (cid_id, descriptor_id, file_id, cmap_id) = (
            Ref::new(font_id.get() + 1),
            Ref::new(font_id.get() + 2),
            Ref::new(font_id.get() + 3),
            Ref::new(font_id.get() + 4),
        );
        let face = &self.face;
        let cff = face.tables().cff.is_some();
        let ps_name = face
            .names()
            .into_iter()
            .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
            .find_map(|n| n.to_string())
            .unwrap_or_else(|| "CJK".to_owned());
        // The subset tag: six capitals from the glyphs kept, so a subset is named for what it holds.
        let mut tag = [0u8; 6];
        let mut h: u32 = 2_166_136_261;
        for g in self.remap.remapped_gids() {
            h = (h ^ u32::from(g)).wrapping_mul(16_777_619);
        }
        for (i, t) in tag.iter_mut().enumerate() {
            *t = b'A' + ((h >> (i * 4)) % 26) as u8;
        }
        let base = format!("{}+{ps_name}", String::from_utf8_lossy(&tag));
        let em = f32::from(face.units_per_em());
        let to_pdf = |v: f32| v * 1000.0 / em;
        let info = SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 };

        pdf.type0_font(font_id)
            .base_font(Name(base.as_bytes()))
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid_id)
            .to_unicode(cmap_id);
        let widths: Vec<f32> = self
            .remap
            .remapped_gids()
            .map(|g| to_pdf(face.glyph_hor_advance(ttf_parser::GlyphId(g)).map_or(0.0, f32::from)))
            .collect();
        let mut cid = pdf.cid_font(cid_id);
        cid.subtype(if cff { CidFontType::Type0 } else { CidFontType::Type2 });
        cid.base_font(Name(base.as_bytes())).system_info(info).font_descriptor(descriptor_id);
        if !cff {
            cid.cid_to_gid_map_predefined(Name(b"Identity"));
        }
        cid.widths().consecutive(0, widths);
        cid.finish();
        let b = face.global_bounding_box();
        let mut d = pdf.font_descriptor(descriptor_id);
        d.name(Name(base.as_bytes()))
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(
                to_pdf(f32::from(b.x_min)),
                to_pdf(f32::from(b.y_min)),
                to_pdf(f32::from(b.x_max)),
                to_pdf(f32::from(b.y_max)),
            ))
            .italic_angle(face.italic_angle())
            .ascent(to_pdf(f32::from(face.ascender())))
            .descent(to_pdf(f32::from(face.descender())))
            .cap_height(to_pdf(f32::from(face.capital_height().unwrap_or(face.ascender()))))
            .stem_v(80.0);
        if cff {
            d.font_file3(file_id);
        } else {
            d.font_file2(file_id);
        }
        d.finish();
        let mut file = pdf.stream(file_id, &packed);
        file.filter(Filter::FlateDecode);
        if cff {
            file.pair(Name(b"Subtype"), Name(b"OpenType"));
        }
        file.finish();
        let mut cmap = UnicodeCmap::new(Name(b"FieldvisitCjk-UCS2"), info);
        for (g, c) in &self.chars {
            cmap.pair(*g, *c);
        }
        pdf.cmap(cmap_id, &cmap.finish());
        Ok(())
    }
}

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

/// Whether Helvetica (`WinAnsiEncoding`) sets every character of `s`.
fn is_latin1(s: &str) -> bool {
    s.chars().all(|c| (' '..='\u{ff}').contains(&c))
}

struct Page<'f> {
    content: Content,
    cjk: Option<CjkRuns<'f>>,
}

impl Page<'_> {
    /// Sets `s` in Helvetica (`F1`, bold `F2`) or, when it needs it and there is one, the CJK font
    /// (`F3`; bold drawn as filled and stroked).
    fn text(&mut self, font: &[u8], size: f32, x: f32, y: f32, s: &str) {
        self.content.begin_text();
        if let Some(cjk) = self.cjk.as_mut().filter(|_| !is_latin1(s)) {
            let bytes = cjk.encode(s);
            self.content.set_font(Name(b"F3"), size);
            if font == b"F2" {
                self.content.set_text_rendering_mode(TextRenderingMode::FillStroke);
                self.content.set_line_width(size / 30.0);
            }
            self.content.next_line(x, y);
            self.content.show(Str(&bytes));
            self.content.set_text_rendering_mode(TextRenderingMode::Fill);
        } else {
            let bytes = latin1(s);
            self.content.set_font(Name(font), size);
            self.content.next_line(x, y);
            self.content.show(Str(&bytes));
        }
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

/// The PDF, one page per rep (a page saying so when there is none), with the configured CJK font
/// when there is one.
pub fn summary(pages: &[RepPage], meta: &Meta<'_>) -> Vec<u8> {
    let font = CjkFont::configured();
    summary_with(pages, meta, font.as_ref())
}

/// [`summary`] with `font` for the runs Helvetica cannot set (`None`: they print with `?`).
pub fn summary_with(pages: &[RepPage], meta: &Meta<'_>, font: Option<&CjkFont>) -> Vec<u8> {
    match write(pages, meta, font) {
        Ok(pdf) => pdf,
        Err(e) => {
            tracing::warn!(error = %e, "CJK font subset failed; the PDF summary is set in Helvetica alone");
            write(pages, meta, None).unwrap_or_default()
        }
    }
}

fn write(pages: &[RepPage], meta: &Meta<'_>, font: Option<&CjkFont>) -> Result<Vec<u8>, String> {
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
    let cjk_font = Ref::new(5 + 2 * pages.len() as i32);
    let mut p = Page { content: Content::new(), cjk: font.and_then(CjkRuns::new) };
    for (rep, (_, content_id)) in pages.iter().zip(&ids) {
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
        let data = std::mem::replace(&mut p.content, Content::new()).finish();
        pdf.stream(*content_id, &data);
    }
    let cjk = p.cjk.filter(CjkRuns::used);
    if let Some(cjk) = &cjk {
        cjk.write(&mut pdf, cjk_font)?;
    }
    for (page_id, content_id) in &ids {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0));
        page.parent(tree);
        page.contents(*content_id);
        let mut resources = page.resources();
        let mut fonts = resources.fonts();
        fonts.pair(Name(b"F1"), regular).pair(Name(b"F2"), bold);
        if cjk.is_some() {
            fonts.pair(Name(b"F3"), cjk_font);
        }
    }
    Ok(pdf.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta<'static> {
        Meta {
            export_id: 1,
            scope: "territory BJ",
            from: NaiveDate::MIN,
            to: NaiveDate::MIN,
            generated_at: Utc::now(),
            generated_by: "auditor",
            data_sha256: "ab",
        }
    }

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
        let meta = meta();
        let pages = vec![RepPage { login: "r1".into(), name: "Rép 1 李".into(), ..RepPage::default() }; 3];
        let bytes = summary(&pages, &meta);
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.matches("/Type /Page").count() - text.matches("/Type /Pages").count(), 3, "{text}");
        assert_eq!(latin1("Rép 李"), b"R\xe9p ?".to_vec());
    }

    #[test]
    fn chinese_is_set_in_an_embedded_subset_of_the_cjk_font_and_latin_in_helvetica() {
        let font = CjkFont::load(Path::new(DEFAULT_FONT)).expect("fonts-noto-cjk (scripts/test-tools.sh installs it)");
        let meta = meta();
        let pages = vec![
            RepPage { login: "rep1".into(), name: "王秀英".into(), ..RepPage::default() },
            RepPage { login: "rep2".into(), name: "赵磊".into(), ..RepPage::default() },
        ];
        let bytes = summary_with(&pages, &meta, Some(&font));
        let text = String::from_utf8_lossy(&bytes);
        for part in ["/Type0", "/Identity-H", "/ToUnicode", "/FontFile3", "/CIDFontType0", "/F3"] {
            assert!(text.contains(part), "{part} in the PDF");
        }
        assert!(bytes.len() < 60_000, "only the glyphs used are embedded: {} bytes", bytes.len());
        // Latin-1 names need no embedded font; without the font Chinese prints as `?`.
        let latin = vec![RepPage { login: "r".into(), name: "Rép".into(), ..RepPage::default() }];
        assert!(!String::from_utf8_lossy(&summary_with(&latin, &meta, Some(&font))).contains("/Type0"));
        let plain = summary_with(&pages, &meta, None);
        assert!(!String::from_utf8_lossy(&plain).contains("/Type0"));
        assert!(plain.windows(5).any(|w| w == b"??? ("), "the names print as ? without the font");
    }
}
