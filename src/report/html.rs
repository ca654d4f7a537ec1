//! `/report` as one self-contained HTML page: inline CSS and a small inline
//! script, no external assets, readable on a phone (the table turns into
//! cards below 760 px). Rows leave the server in the report's order (by
//! impact, root causes first); the script re-sorts them on a click on a
//! column header and back to that order on load.

use super::text::duration;
use super::{Finding, Report};

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// Unix seconds as `2025-01-31 23:59:59 UTC` (the `time` crate's calendar;
/// a time it cannot represent, past the year 9999, is shown as seconds).
pub fn utc(unix: f64) -> String {
    let secs = unix.floor() as i64;
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => format!("{secs} s since 1970 UTC"),
    }
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:90rem;padding:1rem;color:#1b1f24;line-height:1.4}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin-top:2rem}
.meta{color:#57606a;font-size:.9rem}
.counts span{display:inline-block;margin:.2rem .4rem .2rem 0;padding:.15rem .6rem;border-radius:1rem;font-weight:600}
.sev{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;font-weight:700;font-size:.8rem;text-transform:uppercase}
.critical{background:#d1242f;color:#fff}.warning{background:#bf8700;color:#fff}.info{background:#ddf4ff;color:#0969da}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #d0d7de;padding:.45rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa;position:sticky;top:0}
th.sortable{cursor:pointer;text-decoration:underline dotted}
pre{margin:.2rem 0;padding:.4rem;background:#f6f8fa;border-radius:.3rem;white-space:pre-wrap;word-break:break-word;font-size:.85rem}
ul.ev{margin:.3rem 0;padding-left:1.1rem;font-size:.9rem}
.why{color:#57606a;font-size:.9rem}.caution{font-size:.85rem;color:#6e4b00}
.obj{font-family:ui-monospace,monospace;overflow-wrap:break-word;word-break:normal}
div.fallback,div.on-primary{font-size:.8rem;color:#57606a;margin-top:.3rem}pre.fallback{background:#fff8c5}pre.on-primary{background:#eef}
.standby{padding:.6rem .8rem;background:#fff8c5;border:1px solid #d4a72c;border-radius:.4rem}
.scroll{overflow-x:auto}.root{font-size:.8rem;font-weight:600;color:#8250df}#parts{font-size:.85rem}
.none{padding:1rem;background:#dafbe1;border-radius:.4rem}
@media (max-width:760px){
 table#findings,#findings tbody,#findings tr,#findings td{display:block;width:auto}
 #findings thead{display:none}
 #findings tr{border:1px solid #d0d7de;border-radius:.5rem;margin:.8rem 0;padding:.3rem}
 #findings td{border:0;padding:.25rem .4rem}
 #findings td::before{content:attr(data-label);display:block;font-size:.75rem;color:#57606a;text-transform:uppercase}
}";

/// Sorts the findings table by a column; on load by the report's order.
const SCRIPT: &str = "
(function(){
 var t=document.getElementById('findings');if(!t)return;
 var body=t.tBodies[0],dir={};
 function key(tr,k){return k==='rank'||k==='order'?Number(tr.dataset[k]):tr.dataset[k]||'';}
 function sortBy(k,desc){
  var rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(a,b){var x=key(a,k),y=key(b,k);
   var c=x<y?-1:x>y?1:0; if(desc)c=-c;
   if(c===0){c=a.dataset.object<b.dataset.object?-1:a.dataset.object>b.dataset.object?1:0;}
   return c;});
  rows.forEach(function(r){body.appendChild(r);});
  t.dataset.sorted=k+(desc?'-desc':'-asc');
 }
 Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th){
  var k=th.dataset.sort;if(!k)return;th.className='sortable';
  th.addEventListener('click',function(){dir[k]=!dir[k];sortBy(k,dir[k]);});
 });
 sortBy('order',false);
})();";

/// The object for the page: lines may break after the dots between
/// database, schema and table (`<wbr>`) and at spaces, never inside an
/// identifier (CSS `overflow-wrap: break-word` only breaks one that is wider
/// than the whole line, and unlike `word-break: break-word` does not let the
/// table squeeze the column below its longest identifier).
fn object_cell(display: &str) -> String {
    escape(display).replace('.', ".<wbr>")
}

/// Commands under a small heading (`fallback:`, `on the primary:`).
fn labelled(class: &str, heading: &str, cmds: &[super::Command]) -> String {
    if cmds.is_empty() {
        return String::new();
    }
    let pres: String = cmds
        .iter()
        .map(|c| {
            format!(
                "<pre class=\"cmd {class} {}\"><code>{}</code></pre>",
                c.kind,
                escape(&c.text)
            )
        })
        .collect();
    format!("<div class=\"{class}\">{heading}</div>{pres}")
}

fn row(order: usize, f: &Finding) -> String {
    let evidence: String = f
        .evidence
        .iter()
        .map(|e| format!("<li>{}: <b>{}</b></li>", escape(&e.name), escape(&e.text)))
        .collect();
    let fix: String = f
        .fix
        .iter()
        .map(|c| {
            format!(
                "<pre class=\"cmd {}\"><code>{}</code></pre>",
                c.kind,
                escape(&c.text)
            )
        })
        .collect();
    let fallback = labelled("fallback", "fallback:", &f.fallback);
    let on_primary = labelled("on-primary", "on the primary:", &f.on_primary);
    let caution = f
        .caution
        .as_deref()
        .map(|c| format!("<div class=\"caution\">{}</div>", escape(c)))
        .unwrap_or_default();
    let cached = if f.cached_up_to_seconds > 0.0 {
        format!(
            "<br><small>cached, up to {} older</small>",
            duration(f.cached_up_to_seconds)
        )
    } else {
        String::new()
    };
    format!(
        "<tr data-order=\"{order}\" data-rank=\"{rank}\" data-object=\"{obj}\" data-kind=\"{kind}\">\
<td data-label=\"severity\"><span class=\"sev {sev}\">{sev}</span></td>\
<td data-label=\"object\" class=\"obj\">{obj_cell}</td>\
<td data-label=\"finding\">{root}<b>{title}</b><ul class=\"ev\">{evidence}</ul><div class=\"why\">{why}</div>\
<a href=\"{runbook}\">runbook</a></td>\
<td data-label=\"fix\">{fix}{on_primary}{fallback}{caution}</td>\
<td data-label=\"data\"><span title=\"{at}\">{age} ago</span><br><small>{collector}</small>{cached}</td></tr>\n",
        rank = f.severity.rank(),
        sev = f.severity.as_str(),
        obj = escape(&f.object.display()),
        obj_cell = object_cell(&f.object.display()),
        kind = f.kind,
        title = escape(&f.title),
        root = if f.blocks > 0 {
            format!(
                "<div class=\"root\">root cause: VACUUM cannot fix {} finding{} below while this lasts</div>",
                f.blocks,
                if f.blocks == 1 { "" } else { "s" }
            )
        } else {
            String::new()
        },
        why = escape(&f.why),
        runbook = escape(&f.runbook),
        at = utc(f.collected_at),
        age = duration(f.data_age_seconds),
        collector = escape(f.collector),
    )
}

pub fn render(r: &Report) -> String {
    let rows: String = r.findings.iter().enumerate().map(|(i, f)| row(i, f)).collect();
    let table = if r.findings.is_empty() {
        "<p class=\"none\" id=\"no-findings\">Nothing to do: no findings.</p>".to_string()
    } else {
        format!(
            "<table id=\"findings\"><thead><tr><th data-sort=\"rank\">severity</th><th data-sort=\"object\">object</th>\
<th>finding</th><th>fix</th><th data-sort=\"kind\">data</th></tr></thead><tbody>\n{rows}</tbody></table>"
        )
    };
    let filter = match (&r.filter.datname, &r.filter.relname) {
        (None, None) => String::new(),
        (d, t) => format!(
            "<p>Filtered to database <code>{}</code>{} — <a href=\"?\">show all</a></p>",
            escape(d.as_deref().unwrap_or("*")),
            t.as_deref()
                .map(|t| format!(", table <code>{}</code>", escape(t)))
                .unwrap_or_default()
        ),
    };
    let parts: String = r
        .parts
        .iter()
        .map(|p| {
            format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}{}</td></tr>\n",
                escape(p.collector),
                escape(if p.datname.is_empty() {
                    "(cluster)"
                } else {
                    &p.datname
                }),
                if p.success { "ok" } else { "<b>failed</b>" },
                utc(p.collected_at),
                if p.cached_up_to_seconds > 0.0 {
                    format!(" (cached, up to {} older)", duration(p.cached_up_to_seconds))
                } else {
                    String::new()
                }
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Maintenance report — pgmaint-exporter</title><style>{STYLE}</style></head><body>\
<h1>Maintenance report</h1>\
<p class=\"meta\">PostgreSQL {server}{role} · data collected {taken} · page generated {generated} · pgmaint-exporter {version} · \
<a href=\"report.json{query}\">JSON</a> · <a href=\"/\">exporter</a></p>{standby}{filter}\
<p class=\"counts\"><span class=\"critical\">{c} critical</span><span class=\"warning\">{w} warning</span><span class=\"info\">{i} info</span></p>\
{table}\
<h2>When each part was collected</h2><div class=\"scroll\"><table id=\"parts\"><thead><tr><th>collector</th><th>database</th><th>status</th><th>collected</th></tr></thead>\
<tbody>{parts}</tbody></table></div>\
<script>{SCRIPT}</script></body></html>",
        server = escape(r.server_version.as_deref().unwrap_or("unreachable")),
        role = r.role.map(|x| format!(" ({x})")).unwrap_or_default(),
        standby = if r.role == Some("standby") {
            format!(
                "<p class=\"standby\" id=\"standby\"><b>Standby (in recovery).</b> {}</p>",
                escape(super::ON_PRIMARY)
            )
        } else {
            String::new()
        },
        taken = utc(r.scrape_taken_at),
        generated = utc(r.generated_at),
        version = r.exporter_version,
        query = query_string(r),
        c = r.counts.critical,
        w = r.counts.warning,
        i = r.counts.info,
    )
}

/// `?datname=…&relname=…` of the current filter, for the JSON link.
fn query_string(r: &Report) -> String {
    let mut parts = vec![];
    for (k, v) in [("datname", &r.filter.datname), ("relname", &r.filter.relname)] {
        if let Some(v) = v {
            parts.push(format!("{k}={}", escape(&percent(v))));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&amp;"))
    }
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951782400.0), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1735689599.5), "2024-12-31 23:59:59 UTC");
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(percent("Meeting \"Rooms\""), "Meeting%20%22Rooms%22");
    }
}
