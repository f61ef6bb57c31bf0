//! Reading a CSV file of people: which column is which (in the words spreadsheets and
//! Mailchimp use), each row checked as the sign-up form checks, and duplicates found.

use std::collections::HashMap;

use super::{ImportRow, Mode, RowStatus, check, refuse};

/// A file, read: every row with its verdict, and the columns that were not used.
#[derive(Debug)]
pub struct ParsedFile {
    pub rows: Vec<ImportRow>,
    pub ignored_columns: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Column {
    Email,
    Name,
    /// Mailchimp's and many spreadsheets' way: a first name and a last name.
    FirstName,
    LastName,
    Organisation,
    Locality,
    Status,
}

/// The column a header names, in the words spreadsheets use.
fn column(header: &str) -> Option<Column> {
    let key: String = header
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    match key.as_str() {
        "email" | "emailaddress" => Some(Column::Email),
        "name" | "fullname" => Some(Column::Name),
        "firstname" | "first" | "givenname" | "forename" => Some(Column::FirstName),
        "lastname" | "last" | "surname" | "familyname" => Some(Column::LastName),
        "organisation" | "organization" => Some(Column::Organisation),
        "locality" | "district" => Some(Column::Locality),
        "status" => Some(Column::Status),
        _ => None,
    }
}

/// A cell as written, without the `'` our export puts before text that starts like
/// a formula.
fn cell_text(raw: &str) -> String {
    let text = raw.trim();
    match text.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest.to_owned(),
        _ => text.to_owned(),
    }
}

/// Reads a CSV file of people: a header row naming the columns (`email` and `name`
/// at least; `organisation`, `locality` and `status` if present), then one person a
/// line. Commas, semicolons or tabs; UTF-8, with or without a byte-order mark. The
/// error is for the whole file; a row's problems are its verdict.
pub fn read_csv(data: &[u8], mode: Mode) -> Result<ParsedFile, String> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let text = std::str::from_utf8(data).map_err(|_| {
        "The file is not UTF-8 text. In Excel, save it as “CSV UTF-8 (Comma delimited)”.".to_owned()
    })?;
    if text.trim().is_empty() {
        return Err("The file is empty.".into());
    }
    let first_line = text.lines().next().unwrap_or("");
    let delimiter = [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| (first_line.matches(char::from(*d)).count(), *d == b','))
        .unwrap_or(b',');
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(data);
    let headers = reader
        .headers()
        .map_err(|e| format!("The first line could not be read: {e}"))?
        .clone();
    let mut columns = Vec::new();
    let mut ignored_columns = Vec::new();
    for header in headers.iter() {
        let found = column(header).filter(|c| !columns.contains(&Some(*c)));
        if found.is_none() && !header.trim().is_empty() {
            ignored_columns.push(header.trim().to_owned());
        }
        columns.push(found);
    }
    let has_name =
        columns.contains(&Some(Column::Name)) || columns.contains(&Some(Column::FirstName));
    for (needed, name) in [(Column::Email, "email"), (Column::Name, "name")] {
        let present = columns.contains(&Some(needed)) || (needed == Column::Name && has_name);
        if !present {
            return Err(format!(
                "The first line must name the columns, and there is no “{name}” column. It has: {}.",
                headers.iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }

    let mut rows = Vec::new();
    let mut seen: HashMap<String, i64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("The file could not be read: {e}"))?;
        let line = record.position().map_or(0, |p| p.line()) as i64;
        let value = |wanted: Column| {
            columns
                .iter()
                .position(|c| *c == Some(wanted))
                .and_then(|i| record.get(i))
                .map(cell_text)
                .unwrap_or_default()
        };
        // A name, or a first and a last name joined.
        let name = match value(Column::Name) {
            name if !name.is_empty() => name,
            _ => [value(Column::FirstName), value(Column::LastName)]
                .into_iter()
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        };
        let mut row = ImportRow {
            line,
            email: value(Column::Email),
            name,
            organisation: value(Column::Organisation),
            locality: value(Column::Locality),
            status: RowStatus::Ready,
            reason: None,
        };
        let verdict = check(&row).and_then(|person| {
            match value(Column::Status).to_lowercase().as_str() {
                "unsubscribed" => Err("Marked unsubscribed in the file.".to_owned()),
                "pending" if mode == Mode::Confirmed => Err(
                    "Marked pending in the file: they never confirmed. Import them with a confirmation email instead."
                        .to_owned(),
                ),
                _ => Ok(person),
            }
        });
        match verdict {
            Ok(person) => match seen.get(&person.email.key()) {
                Some(first) => refuse(&mut row, format!("The same address as line {first}.")),
                None => {
                    seen.insert(person.email.key(), line);
                    // A locality we do not know is left out, not the person.
                    let note = (!row.locality.is_empty() && person.locality.is_none()).then(|| {
                        format!(
                            "“{}” is not one of the localities, so they are imported without one.",
                            row.locality
                        )
                    });
                    row = ImportRow {
                        reason: note,
                        email: person.email.as_str().to_owned(),
                        name: person.name.as_str().to_owned(),
                        organisation: person
                            .organisation
                            .map(|o| o.as_str().to_owned())
                            .unwrap_or_default(),
                        locality: person
                            .locality
                            .map(|l| l.slug().to_owned())
                            .unwrap_or_default(),
                        ..row
                    };
                }
            },
            Err(reason) => refuse(&mut row, reason),
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err("The file has a header line but nobody in it.".into());
    }
    Ok(ParsedFile {
        rows,
        ignored_columns,
    })
}
