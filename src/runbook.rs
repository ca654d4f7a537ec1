//! `GET /runbook`: docs/runbook.md, compiled into the binary, as one HTML
//! page. Every alert's `runbook_url` defaults to `<exporter>/runbook#<alert
//! name in lower case>` (scripts/gen-prometheusrule.sh), so the link resolves
//! wherever the exporter runs, without access to the repository.
//!
//! Rendered with pulldown-cmark (CommonMark and tables). Heading ids follow
//! GitHub's rule (lower case, spaces to dashes, other punctuation dropped), so
//! the same `#anchor` works on GitHub and here. Text is HTML-escaped, raw HTML
//! shown as text; nothing from a request is used.

use axum::response::Html;
use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag, TagEnd};

/// The runbook as shipped.
pub const MARKDOWN: &str = include_str!("../docs/runbook.md");

/// `GET /runbook`
pub async fn page() -> Html<String> {
    Html(render(MARKDOWN))
}

/// GitHub's heading anchor: lower case, spaces to `-`, only alphanumerics,
/// `-` and `_` kept.
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The whole page: pulldown-cmark's HTML with GitHub's heading ids. Links to
/// the other docs lead nowhere on the exporter: they become their text with
/// the file named; in-page anchors and absolute URLs stay links. Raw HTML in
/// the Markdown is shown as text.
pub fn render(markdown: &str) -> String {
    let mut events: Vec<Event> = Parser::new_ext(markdown, Options::ENABLE_TABLES).collect();
    let mut i = 0;
    while i < events.len() {
        if matches!(events[i], Event::Start(Tag::Heading { .. })) {
            let mut text = String::new();
            let mut j = i + 1;
            while j < events.len() && !matches!(events[j], Event::End(TagEnd::Heading(_))) {
                if let Event::Text(t) | Event::Code(t) = &events[j] {
                    text.push_str(t);
                }
                j += 1;
            }
            if let Event::Start(Tag::Heading { id, .. }) = &mut events[i] {
                *id = Some(CowStr::from(anchor(&text)));
            }
            i = j;
        }
        i += 1;
    }
    let mut shown = Vec::with_capacity(events.len());
    // For each open link: the target of one shown as text, None for a link.
    let mut links: Vec<Option<CowStr>> = vec![];
    for event in events {
        match event {
            Event::Start(Tag::Link {
                dest_url,
                title,
                id,
                link_type,
            }) => {
                let keep = dest_url.starts_with('#')
                    || dest_url.starts_with("http://")
                    || dest_url.starts_with("https://");
                if keep {
                    links.push(None);
                    shown.push(Event::Start(Tag::Link {
                        dest_url,
                        title,
                        id,
                        link_type,
                    }));
                } else {
                    links.push(Some(dest_url));
                }
            }
            Event::End(TagEnd::Link) => match links.pop().flatten() {
                Some(target) => shown.push(Event::Text(format!(" (docs: {target})").into())),
                None => shown.push(Event::End(TagEnd::Link)),
            },
            Event::Html(h) | Event::InlineHtml(h) => shown.push(Event::Text(h)),
            e => shown.push(e),
        }
    }
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>pgmaint-exporter runbook</title>\
         <style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}\
         pre{background:#f4f4f4;padding:.6rem;overflow-x:auto}code{background:#f4f4f4}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .4rem}\
         h2{border-top:1px solid #ccc;padding-top:1rem}</style></head><body>\n",
    );
    html::push_html(&mut out, shown.into_iter());
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_get_githubs_anchors() {
        assert_eq!(anchor("PostgresDown"), "postgresdown");
        assert_eq!(anchor("Tuning thresholds"), "tuning-thresholds");
        let html = render("## PgmaintExporterDown\n\nText with `a<b` and **bold**.\n");
        assert!(
            html.contains("<h2 id=\"pgmaintexporterdown\">PgmaintExporterDown</h2>"),
            "{html}"
        );
        assert!(
            html.contains("<p>Text with <code>a&lt;b</code> and <strong>bold</strong>.</p>"),
            "{html}"
        );
    }

    #[test]
    fn code_blocks_lists_and_links() {
        let html =
            render("- one [here](#postgresdown)\n- two [doc](metrics.md)\n\n```sql\nSELECT 1 < 2;\n```\n");
        assert!(
            html.contains("<li>one <a href=\"#postgresdown\">here</a></li>"),
            "{html}"
        );
        assert!(html.contains("<li>two doc (docs: metrics.md)</li>"), "{html}");
        assert!(
            html.contains("<pre><code class=\"language-sql\">SELECT 1 &lt; 2;\n</code></pre>"),
            "{html}"
        );
        assert!(render("<script>x</script>\n").contains("&lt;script&gt;"));
    }

    #[test]
    fn every_alert_section_of_the_shipped_runbook_has_its_anchor() {
        let html = render(MARKDOWN);
        for line in MARKDOWN.lines().filter_map(|l| l.strip_prefix("## ")) {
            let id = format!("id=\"{}\"", anchor(line));
            assert!(html.contains(&id), "{line}: no {id}");
        }
        // Unbalanced markup cannot break the page.
        let odd = render("**open `code\n[x](y\n```\nunterminated");
        assert!(odd.ends_with("</body></html>\n"));
    }
}
