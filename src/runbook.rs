//! `GET /runbook`: docs/runbook.md, compiled into the binary, as one HTML
//! page. Every alert's `runbook_url` defaults to `<exporter>/runbook#<alert
//! name in lower case>` (scripts/gen-prometheusrule.sh), so the link resolves
//! wherever the exporter runs, without access to the repository.
//!
//! The renderer knows only the Markdown the runbook uses: headings, fenced
//! code blocks, paragraphs, `-`/`1.` list items, `code`, **bold** and
//! [links](target). Heading ids follow GitHub's rule (lower case, spaces to
//! dashes, other punctuation dropped), so the same `#anchor` works on GitHub
//! and here. Everything is HTML-escaped; nothing from a request is used.

use axum::response::Html;

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

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Inline markup of one paragraph: `code` first (its content is literal),
/// then **bold** and [text](target) outside code.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(&escape(part));
            out.push_str("</code>");
        } else {
            out.push_str(&links_and_bold(part));
        }
    }
    out
}

fn links_and_bold(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find("](") else { break };
        let Some(end) = after[close + 2..].find(')') else {
            break;
        };
        out.push_str(&bold(&rest[..open]));
        let label = &after[..close];
        let target = &after[close + 2..close + 2 + end];
        // Links to the other docs lead nowhere on the exporter: show them as
        // text with the file named, keep in-page anchors and absolute URLs.
        if target.starts_with('#') || target.starts_with("http://") || target.starts_with("https://") {
            out.push_str(&format!("<a href=\"{}\">{}</a>", escape(target), bold(label)));
        } else {
            out.push_str(&format!("{} (docs: {})", bold(label), escape(target)));
        }
        rest = &after[close + 2 + end + 1..];
    }
    out.push_str(&bold(rest));
    out
}

fn bold(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split("**").enumerate() {
        if i % 2 == 1 {
            out.push_str("<strong>");
            out.push_str(&escape(part));
            out.push_str("</strong>");
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// The whole page.
pub fn render(markdown: &str) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>pgmaint-exporter runbook</title>\
         <style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}\
         pre{background:#f4f4f4;padding:.6rem;overflow-x:auto}code{background:#f4f4f4}\
         h2{border-top:1px solid #ccc;padding-top:1rem}</style></head><body>\n",
    );
    let mut paragraph: Vec<&str> = vec![];
    let mut in_list = false;
    let mut lines = markdown.lines();
    let flush = |out: &mut String, paragraph: &mut Vec<&str>, in_list: &mut bool| {
        if !paragraph.is_empty() {
            let text = paragraph.join(" ");
            if *in_list {
                out.push_str(&format!("<li>{}</li>\n", inline(&text)));
            } else {
                out.push_str(&format!("<p>{}</p>\n", inline(&text)));
            }
            paragraph.clear();
        }
    };
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            flush(&mut out, &mut paragraph, &mut in_list);
            out.push_str("<pre><code>");
            for code in lines.by_ref() {
                if code.trim_start().starts_with("```") {
                    break;
                }
                out.push_str(&escape(code));
                out.push('\n');
            }
            out.push_str("</code></pre>\n");
            continue;
        }
        let heading = ["### ", "## ", "# "]
            .iter()
            .find_map(|p| line.strip_prefix(p).map(|h| (p.len() - 1, h)));
        if let Some((level, text)) = heading {
            flush(&mut out, &mut paragraph, &mut in_list);
            if in_list {
                out.push_str("</ul>\n");
                in_list = false;
            }
            out.push_str(&format!(
                "<h{level} id=\"{}\">{}</h{level}>\n",
                escape(&anchor(text)),
                inline(text)
            ));
            continue;
        }
        if trimmed.is_empty() {
            flush(&mut out, &mut paragraph, &mut in_list);
            if in_list {
                out.push_str("</ul>\n");
                in_list = false;
            }
            continue;
        }
        let item = trimmed.strip_prefix("- ").or_else(|| {
            let digits = trimmed.chars().take_while(|c| c.is_ascii_digit()).count();
            (digits > 0)
                .then(|| trimmed[digits..].strip_prefix(". "))
                .flatten()
        });
        if let Some(item) = item {
            flush(&mut out, &mut paragraph, &mut in_list);
            if !in_list {
                out.push_str("<ul>\n");
                in_list = true;
            }
            paragraph.push(item);
            continue;
        }
        paragraph.push(trimmed);
    }
    flush(&mut out, &mut paragraph, &mut in_list);
    if in_list {
        out.push_str("</ul>\n");
    }
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
            html.contains("<pre><code>SELECT 1 &lt; 2;\n</code></pre>"),
            "{html}"
        );
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
