"""Reads an exported workbook with openpyxl and the zipped CSVs with the standard library, and
prints what a reader sees as JSON: {"xlsx": {sheet: [rows]}, "csv": {file: [rows]}}.
Used by tests/integration/exports.rs: the export must open in a real spreadsheet reader."""
import csv
import io
import json
import sys
import zipfile

import openpyxl

xlsx_path, zip_path = sys.argv[1], sys.argv[2]
book = openpyxl.load_workbook(xlsx_path, read_only=True)
sheets = {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book.worksheets}
tables = {}
with zipfile.ZipFile(zip_path) as z:
    assert z.testzip() is None, "a corrupt member"
    for name in z.namelist():
        with z.open(name) as f:
            tables[name] = list(csv.reader(io.TextIOWrapper(f, encoding="utf-8", newline="")))
json.dump({"xlsx": sheets, "csv": tables}, sys.stdout, default=str)
