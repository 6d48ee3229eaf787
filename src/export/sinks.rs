//! The files of an export, written row by row with bounded memory: an XLSX workbook in constant
//! memory mode (worksheets stream to temporary files), one CSV per table (zipped at the end) and a
//! GeoJSON feature collection.

use crate::domain::export::ExportFormat;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Most rows of one worksheet (Excel's limit); a longer table continues on "Name (2)".
const SHEET_ROWS: u32 = 1_048_576;

/// The tables of an export, in sheet order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Summary,
    RepDays,
    Visits,
    Missed,
    Suspect,
    Reviews,
    Photos,
    Outcomes,
    Assessment,
    Definitions,
}

impl Table {
    pub const ALL: [Table; 10] = [
        Table::Summary,
        Table::RepDays,
        Table::Visits,
        Table::Missed,
        Table::Suspect,
        Table::Reviews,
        Table::Photos,
        Table::Outcomes,
        Table::Assessment,
        Table::Definitions,
    ];

    /// The worksheet name.
    pub fn sheet(self) -> &'static str {
        match self {
            Table::Summary => "Summary",
            Table::RepDays => "Rep days",
            Table::Visits => "Visits",
            Table::Missed => "Missed planned",
            Table::Suspect => "Suspect visits",
            Table::Reviews => "Reviews",
            Table::Photos => "Photos",
            Table::Outcomes => "Checklist answers",
            Table::Assessment => "Monthly assessment",
            Table::Definitions => "Definitions",
        }
    }

    /// The CSV file name inside the zip.
    pub fn csv(self) -> &'static str {
        match self {
            Table::Summary => "summary.csv",
            Table::RepDays => "rep_days.csv",
            Table::Visits => "visits.csv",
            Table::Missed => "missed_planned.csv",
            Table::Suspect => "suspect_visits.csv",
            Table::Reviews => "reviews.csv",
            Table::Photos => "photos.csv",
            Table::Outcomes => "checklist_answers.csv",
            Table::Assessment => "monthly_assessment.csv",
            Table::Definitions => "definitions.csv",
        }
    }

    /// The table's place in [`Table::ALL`] (and in the header list).
    fn index(self) -> usize {
        match self {
            Table::Summary => 0,
            Table::RepDays => 1,
            Table::Visits => 2,
            Table::Missed => 3,
            Table::Suspect => 4,
            Table::Reviews => 5,
            Table::Photos => 6,
            Table::Outcomes => 7,
            Table::Assessment => 8,
            Table::Definitions => 9,
        }
    }
}

/// One cell of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Int(i64),
    Num(f64),
    Text(String),
    Empty,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }
    pub fn opt_num(v: Option<f64>) -> Cell {
        v.map_or(Cell::Empty, Cell::Num)
    }
    pub fn date(d: NaiveDate) -> Cell {
        Cell::Text(d.to_string())
    }
    /// An instant as RFC 3339 UTC (what the API returns).
    pub fn time(t: DateTime<Utc>) -> Cell {
        Cell::Text(t.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
    pub fn opt_time(t: Option<DateTime<Utc>>) -> Cell {
        t.map_or(Cell::Empty, Cell::time)
    }

    fn csv(&self) -> String {
        match self {
            Cell::Int(i) => i.to_string(),
            Cell::Num(n) => n.to_string(),
            // A spreadsheet opening the CSV must not run a cell as a formula (OWASP "CSV
            // injection": TAB and CR start one too).
            Cell::Text(s) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err() => {
                format!("'{s}")
            }
            Cell::Text(s) => s.clone(),
            Cell::Empty => String::new(),
        }
    }
}

/// Why writing failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("writing the workbook: {0}")]
    Xlsx(#[from] XlsxError),
    #[error("writing a file: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing a CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("zipping the CSV files: {0}")]
    Zip(#[from] zip::result::ZipError),
}

struct XlsxSink {
    book: Workbook,
    bold: Format,
    /// Per table: its current worksheet index, next row, part number.
    at: Vec<(usize, u32, u32)>,
    headers: Vec<Vec<&'static str>>,
}

impl XlsxSink {
    fn new(dir: &Path, headers: &[Vec<&'static str>]) -> Result<Self, SinkError> {
        let mut book = Workbook::new();
        book.set_tempdir(dir)?;
        book.use_zip_large_file(true);
        let bold = Format::new().set_bold();
        let mut at = Vec::new();
        for (i, t) in Table::ALL.iter().enumerate() {
            let sheet = book.add_worksheet_with_constant_memory();
            sheet.set_name(t.sheet())?;
            for (c, h) in headers[i].iter().enumerate() {
                sheet.write_string_with_format(0, c as u16, *h, &bold)?;
            }
            at.push((i, 1, 1));
        }
        Ok(XlsxSink { book, bold, at, headers: headers.to_vec() })
    }

    fn row(&mut self, table: Table, cells: &[Cell]) -> Result<(), SinkError> {
        let t = table.index();
        if self.at[t].1 >= SHEET_ROWS {
            let part = self.at[t].2 + 1;
            let sheet = self.book.add_worksheet_with_constant_memory();
            sheet.set_name(format!("{} ({part})", table.sheet()))?;
            for (c, h) in self.headers[t].iter().enumerate() {
                sheet.write_string_with_format(0, c as u16, *h, &self.bold)?;
            }
            let index = self.book.worksheets().len() - 1;
            self.at[t] = (index, 1, part);
        }
        let (index, row, _) = self.at[t];
        let sheet = self.book.worksheet_from_index(index)?;
        for (c, cell) in cells.iter().enumerate() {
            let c = c as u16;
            match cell {
                Cell::Int(i) => {
                    sheet.write_number(row, c, *i as f64)?;
                }
                Cell::Num(n) if n.is_finite() => {
                    sheet.write_number(row, c, *n)?;
                }
                Cell::Text(s) => {
                    sheet.write_string(row, c, s)?;
                }
                Cell::Num(_) | Cell::Empty => {}
            }
        }
        self.at[t].1 += 1;
        Ok(())
    }
}

type CsvFile = csv::Writer<BufWriter<File>>;

/// Every file format an export asked for, fed the same rows.
pub struct Sinks {
    dir: PathBuf,
    xlsx: Option<XlsxSink>,
    csv: Option<Vec<CsvFile>>,
    geojson: Option<(BufWriter<File>, usize)>,
}

impl Sinks {
    /// Sinks writing under `dir` (a private temporary folder) with these table headers.
    pub fn new(dir: &Path, formats: &[ExportFormat], headers: &[Vec<&'static str>]) -> Result<Self, SinkError> {
        let xlsx = if formats.contains(&ExportFormat::Xlsx) { Some(XlsxSink::new(dir, headers)?) } else { None };
        let csv = if formats.contains(&ExportFormat::Csv) {
            let mut files = Vec::new();
            for (i, t) in Table::ALL.iter().enumerate() {
                let mut w = csv::Writer::from_writer(BufWriter::new(File::create(dir.join(t.csv()))?));
                w.write_record(&headers[i])?;
                files.push(w);
            }
            Some(files)
        } else {
            None
        };
        let geojson = if formats.contains(&ExportFormat::Geojson) {
            let mut w = BufWriter::new(File::create(dir.join(ExportFormat::Geojson.file_name()))?);
            w.write_all(br#"{"type":"FeatureCollection","features":["#)?;
            Some((w, 0))
        } else {
            None
        };
        Ok(Sinks { dir: dir.to_owned(), xlsx, csv, geojson })
    }

    /// Appends a row to a table.
    pub fn row(&mut self, table: Table, cells: &[Cell]) -> Result<(), SinkError> {
        if let Some(x) = &mut self.xlsx {
            x.row(table, cells)?;
        }
        if let Some(files) = &mut self.csv {
            files[table.index()].write_record(cells.iter().map(Cell::csv))?;
        }
        Ok(())
    }

    /// Appends a GeoJSON feature (ignored unless GeoJSON was asked for).
    pub fn feature(&mut self, feature: &serde_json::Value) -> Result<(), SinkError> {
        if let Some((w, n)) = &mut self.geojson {
            if *n > 0 {
                w.write_all(b",")?;
            }
            serde_json::to_writer(&mut *w, feature).map_err(std::io::Error::from)?;
            *n += 1;
        }
        Ok(())
    }

    /// Closes every file; returns the export's files (format, path) in the order asked for.
    pub fn finish(self, formats: &[ExportFormat]) -> Result<Vec<(ExportFormat, PathBuf)>, SinkError> {
        let Sinks { dir, xlsx, csv, geojson } = self;
        if let Some(mut x) = xlsx {
            x.book.save(dir.join(ExportFormat::Xlsx.file_name()))?;
        }
        if let Some(files) = csv {
            let zip_file = File::create(dir.join(ExportFormat::Csv.file_name()))?;
            let mut zip = zip::ZipWriter::new(BufWriter::new(zip_file));
            // A fixed time stamp: the same data zips to the same bytes.
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .last_modified_time(zip::DateTime::default())
                .large_file(true);
            for (w, t) in files.into_iter().zip(Table::ALL) {
                w.into_inner().map_err(csv::IntoInnerError::into_error)?.flush()?;
                zip.start_file(t.csv(), options)?;
                std::io::copy(&mut File::open(dir.join(t.csv()))?, &mut zip)?;
                std::fs::remove_file(dir.join(t.csv()))?;
            }
            zip.finish()?.flush()?;
        }
        if let Some((mut w, _)) = geojson {
            w.write_all(b"]}")?;
            w.flush()?;
        }
        Ok(formats.iter().map(|f| (*f, dir.join(f.file_name()))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_cell_that_could_start_a_formula_is_defused() {
        for formula in ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1+1", "\r=1+1"] {
            assert_eq!(Cell::text(formula).csv(), format!("'{formula}"), "{formula:?}");
        }
        for plain in ["-12.5", "+3", "Hall 1", "a\t=b"] {
            assert_eq!(Cell::text(plain).csv(), plain, "{plain:?}");
        }
    }

    #[test]
    fn every_table_sits_at_its_index() {
        for (i, t) in Table::ALL.iter().enumerate() {
            assert_eq!(t.index(), i, "{t:?}");
        }
    }
}
