//! A tiny, safe HTML builder for the self-contained report page.
//!
//! Every user-supplied string (titles, headings, paragraphs, table cells, captions, alt
//! texts) is passed through [`escape`] when the page is rendered; the only content that is
//! inserted verbatim is an SVG figure, which must come from a trusted builder such as
//! [`crate::curves::render_svg`] (which escapes its own text). PNG figures are embedded as
//! `data:` URIs, and the stylesheet is inline, so the page opens offline with no external
//! resources.

use std::fmt::Write as _;

/// Escapes `&`, `<`, `>`, `"` and `'` so that `s` is safe both as element text and inside a
/// quoted attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `bytes` as standard base64 (RFC 4648 alphabet, with `=` padding).
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk[0] as u32;
        let b1 = chunk.get(1).copied().unwrap_or(0) as u32;
        let b2 = chunk.get(2).copied().unwrap_or(0) as u32;
        let n = (b0 << 16) | (b1 << 8) | b2;
        let sym = |shift: u32| BASE64_ALPHABET[((n >> shift) & 63) as usize] as char;
        out.push(sym(18));
        out.push(sym(12));
        out.push(if chunk.len() > 1 { sym(6) } else { '=' });
        out.push(if chunk.len() > 2 { sym(0) } else { '=' });
    }
    out
}

/// One body cell: plain text, an optional CSS class (`pass`, `fail`, `na`, `num`) and an
/// optional tooltip; all three are escaped on rendering.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cell {
    /// The text.
    pub text: String,
    /// CSS class.
    pub class: Option<String>,
    /// Tooltip (`title` attribute).
    pub title: Option<String>,
}

impl Cell {
    /// A cell with a class and a tooltip.
    pub fn styled(text: impl Into<String>, class: &str, title: impl Into<String>) -> Self {
        Cell { text: text.into(), class: Some(class.to_string()), title: Some(title.into()) }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell { text, class: None, title: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::from(text.to_string())
    }
}

impl From<&String> for Cell {
    fn from(text: &String) -> Self {
        Cell::from(text.clone())
    }
}

/// A table of plain-text cells; every cell is escaped on rendering.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Optional `id` attribute (for links and tests).
    pub id: Option<String>,
    /// Optional caption shown above the table.
    pub caption: Option<String>,
    /// Header cells (an empty header renders no `<thead>`).
    pub header: Vec<String>,
    /// Body rows; rows may have different lengths.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with the given header and no rows.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            id: None,
            caption: None,
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Sets the caption.
    pub fn with_caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }

    /// Sets the `id` attribute.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Appends a body row.
    pub fn row<S: Into<Cell>>(mut self, cells: impl IntoIterator<Item = S>) -> Self {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }
}

/// The image content of a [`Figure`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FigureContent {
    /// An already-built SVG document or fragment, inserted verbatim. It must come from a
    /// trusted builder that escapes its own text (e.g. [`crate::curves::render_svg`]).
    Svg(String),
    /// PNG bytes, embedded as `<img src="data:image/png;base64,...">` with the given alt text.
    Png {
        /// The encoded PNG file.
        bytes: Vec<u8>,
        /// Alternative text (escaped on rendering).
        alt: String,
    },
}

/// A figure: an SVG or PNG image with an optional caption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Figure {
    /// The image.
    pub content: FigureContent,
    /// Optional caption (escaped on rendering).
    pub caption: Option<String>,
}

impl Figure {
    /// A figure from a trusted, already-built SVG string (inserted verbatim).
    pub fn svg(svg: impl Into<String>) -> Self {
        Self { content: FigureContent::Svg(svg.into()), caption: None }
    }

    /// A figure from encoded PNG bytes, embedded as a base64 `data:` URI.
    pub fn png(bytes: Vec<u8>, alt: impl Into<String>) -> Self {
        Self { content: FigureContent::Png { bytes, alt: alt.into() }, caption: None }
    }

    /// Sets the caption.
    pub fn with_caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }
}

/// One block of a [`Section`], rendered in insertion order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// A paragraph of plain text (escaped on rendering).
    Paragraph(String),
    /// A table.
    Table(Table),
    /// A figure.
    Figure(Figure),
    /// Preformatted text (escaped on rendering), e.g. parameters as JSON.
    Code(String),
}

/// A section of the page: a heading followed by blocks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    /// The heading (escaped on rendering).
    pub heading: String,
    /// Paragraphs, tables and figures, in order.
    pub blocks: Vec<Block>,
}

impl Section {
    /// An empty section with the given heading.
    pub fn new(heading: impl Into<String>) -> Self {
        Self { heading: heading.into(), blocks: Vec::new() }
    }

    /// Appends a paragraph of plain text.
    pub fn paragraph(mut self, text: impl Into<String>) -> Self {
        self.blocks.push(Block::Paragraph(text.into()));
        self
    }

    /// Appends a table.
    pub fn table(mut self, table: Table) -> Self {
        self.blocks.push(Block::Table(table));
        self
    }

    /// Appends a figure.
    pub fn figure(mut self, figure: Figure) -> Self {
        self.blocks.push(Block::Figure(figure));
        self
    }

    /// Appends preformatted text.
    pub fn code(mut self, text: impl Into<String>) -> Self {
        self.blocks.push(Block::Code(text.into()));
        self
    }
}

/// A self-contained HTML5 page: a title and sections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// The page title, used for `<title>` and the top `<h1>` (escaped on rendering).
    pub title: String,
    /// The sections, in order.
    pub sections: Vec<Section>,
}

const STYLE: &str =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;\
margin:2em auto;max-width:1400px;padding:0 1em;color:#222;line-height:1.45}\
h1{font-size:1.8em;border-bottom:2px solid #ddd;padding-bottom:.3em}\
h2{font-size:1.35em;margin-top:1.8em;border-bottom:1px solid #eee;padding-bottom:.2em}\
table{border-collapse:collapse;margin:1em 0;font-size:.92em;display:block;overflow-x:auto;max-width:100%}\
caption{caption-side:top;text-align:left;font-weight:600;padding-bottom:.3em}\
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}tbody tr:nth-child(even){background:#fafafa}\
figure{margin:1.2em 0}figure svg,figure img{max-width:100%;height:auto}\
figcaption{font-size:.9em;color:#555;margin-top:.3em}\
td.pass{background:#d9f2d9}td.fail{background:#f8d4d4}td.na{color:#777;background:#f1f1f1}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
nav ul{columns:2;font-size:.92em}code{background:#f3f3f3;padding:0 .2em}";

impl Page {
    /// An empty page with the given title.
    pub fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), sections: Vec::new() }
    }

    /// Appends a section.
    pub fn section(mut self, section: Section) -> Self {
        self.sections.push(section);
        self
    }

    /// Renders the page as one HTML5 document with an inline stylesheet.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let title = escape(&self.title);
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        let _ = writeln!(out, "<title>{title}</title>");
        let _ = writeln!(out, "<style>{STYLE}</style>");
        out.push_str("</head>\n<body>\n");
        let _ = writeln!(out, "<h1>{title}</h1>");
        for section in &self.sections {
            render_section(&mut out, section);
        }
        out.push_str("</body>\n</html>\n");
        out
    }
}

fn render_section(out: &mut String, section: &Section) {
    out.push_str("<section>\n");
    let _ = writeln!(out, "<h2>{}</h2>", escape(&section.heading));
    for block in &section.blocks {
        match block {
            Block::Paragraph(text) => {
                let _ = writeln!(out, "<p>{}</p>", escape(text));
            }
            Block::Table(table) => render_table(out, table),
            Block::Figure(figure) => render_figure(out, figure),
            Block::Code(text) => {
                let _ = writeln!(out, "<pre><code>{}</code></pre>", escape(text));
            }
        }
    }
    out.push_str("</section>\n");
}

fn render_table(out: &mut String, table: &Table) {
    match &table.id {
        Some(id) => {
            let _ = writeln!(out, "<table id=\"{}\">", escape(id));
        }
        None => out.push_str("<table>\n"),
    }
    if let Some(caption) = &table.caption {
        let _ = writeln!(out, "<caption>{}</caption>", escape(caption));
    }
    if !table.header.is_empty() {
        out.push_str("<thead><tr>");
        for cell in &table.header {
            let _ = write!(out, "<th>{}</th>", escape(cell));
        }
        out.push_str("</tr></thead>\n");
    }
    out.push_str("<tbody>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str("<td");
            if let Some(class) = &cell.class {
                let _ = write!(out, " class=\"{}\"", escape(class));
            }
            if let Some(title) = &cell.title {
                let _ = write!(out, " title=\"{}\"", escape(title));
            }
            let _ = write!(out, ">{}</td>", escape(&cell.text));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

fn render_figure(out: &mut String, figure: &Figure) {
    out.push_str("<figure>\n");
    match &figure.content {
        FigureContent::Svg(svg) => {
            out.push_str(svg);
            out.push('\n');
        }
        FigureContent::Png { bytes, alt } => {
            let _ = writeln!(
                out,
                "<img src=\"data:image/png;base64,{}\" alt=\"{}\">",
                base64_encode(bytes),
                escape(alt)
            );
        }
    }
    if let Some(caption) = &figure.caption {
        let _ = writeln!(out, "<figcaption>{}</figcaption>", escape(caption));
    }
    out.push_str("</figure>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = "<script>alert(\"x\" + 'y')</script> & co";
    const EVIL_ESCAPED: &str =
        "&lt;script&gt;alert(&quot;x&quot; + &#39;y&#39;)&lt;/script&gt; &amp; co";

    #[test]
    fn escape_all_five_characters() {
        assert_eq!(escape(EVIL), EVIL_ESCAPED);
        assert_eq!(escape("plain text, ünïcode"), "plain text, ünïcode");
        assert_eq!(escape(""), "");
        // Escaping is not idempotent on purpose: an already-escaped string is escaped again.
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }

    #[test]
    fn base64_known_vectors() {
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"M"), "TQ==");
        assert_eq!(base64_encode(b"Ma"), "TWE=");
        // RFC 4648 section 10 test vectors.
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
        assert_eq!(base64_encode(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    fn evil_page() -> Page {
        Page::new(EVIL).section(
            Section::new(EVIL)
                .paragraph(EVIL)
                .table(Table::new([EVIL, "method"]).with_caption(EVIL).row([EVIL, "ok"]))
                .figure(Figure::png(vec![1, 2, 3], EVIL).with_caption(EVIL)),
        )
    }

    #[test]
    fn every_text_path_is_escaped() {
        let html = evil_page().render();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("'y'"));
        assert!(!html.contains("\"x\""));
        // title, h1, h2, p, caption, th, td, alt, figcaption
        assert_eq!(html.matches(EVIL_ESCAPED).count(), 9, "{html}");
        assert!(html.contains(&format!("<title>{EVIL_ESCAPED}</title>")));
        assert!(html.contains(&format!("<td>{EVIL_ESCAPED}</td>")));
        assert!(html.contains(&format!("<th>{EVIL_ESCAPED}</th>")));
    }

    #[test]
    fn page_is_self_contained_html5() {
        let html = evil_page().render();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("<style>"));
        assert!(html.contains("src=\"data:image/png;base64,AQID\""));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<link") && !html.contains("<script"));
        for tag in ["html", "head", "body", "section", "table", "thead", "tbody", "tr", "figure"] {
            assert_eq!(
                html.matches(&format!("<{tag}>")).count()
                    + html.matches(&format!("<{tag} ")).count(),
                html.matches(&format!("</{tag}>")).count(),
                "unbalanced <{tag}>"
            );
        }
        assert_eq!(html, evil_page().render());
    }

    #[test]
    fn svg_figures_are_inserted_verbatim() {
        let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\"><line x1=\"0\"/></svg>";
        let html = Page::new("t").section(Section::new("s").figure(Figure::svg(svg))).render();
        assert!(html.contains(svg));
    }
}
