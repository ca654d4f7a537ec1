//! A parser for the exposition the exporter serves: every series with its
//! labels and value, the TYPE lines and the raw text, and look-ups by name and
//! labels.

use std::collections::BTreeMap;

/// One parsed series.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition: every series, plus HELP/TYPE lines and the raw text.
#[derive(Debug, Clone)]
pub struct Samples {
    pub series: Vec<Series>,
    pub types: BTreeMap<String, String>,
    pub raw: String,
}

impl Samples {
    pub fn parse(text: &str) -> Samples {
        let mut series = Vec::new();
        let mut types = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (n, t) = rest.split_once(' ').unwrap();
                types.insert(n.to_string(), t.to_string());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (name, rest) = match line.find(['{', ' ']) {
                Some(i) => line.split_at(i),
                None => panic!("bad line {line:?}"),
            };
            let mut labels = BTreeMap::new();
            let mut rest = rest;
            if rest.starts_with('{') {
                let mut chars = rest[1..].char_indices();
                loop {
                    let mut key = String::new();
                    let mut end = None;
                    for (i, c) in chars.by_ref() {
                        if c == '=' {
                            break;
                        }
                        if c == '}' {
                            end = Some(i);
                            break;
                        }
                        if c != ',' {
                            key.push(c);
                        }
                    }
                    if let Some(i) = end {
                        rest = &rest[i + 2..];
                        break;
                    }
                    assert_eq!(chars.next().map(|x| x.1), Some('"'), "line {line:?}");
                    let mut val = String::new();
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '\\' => match chars.next().unwrap().1 {
                                'n' => val.push('\n'),
                                o => val.push(o),
                            },
                            '"' => break,
                            o => val.push(o),
                        }
                    }
                    labels.insert(key, val);
                }
            }
            let v = rest.trim();
            let value = match v {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                _ => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            series.push(Series {
                name: name.to_string(),
                labels,
                value,
            });
        }
        Samples {
            series,
            types,
            raw: text.to_string(),
        }
    }

    /// Series of `name` whose labels include all of `labels`.
    pub fn find<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Series> + 'a {
        self.series.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The value of the one series matching; None if absent, panics if ambiguous.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<&Series> = self.find(name, labels).collect();
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} series: {found:?}",
            found.len()
        );
        found.first().map(|s| s.value)
    }

    pub fn has(&self, name: &str) -> bool {
        self.series.iter().any(|s| s.name == name)
    }
}
