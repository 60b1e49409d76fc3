//! gorilla/mux route templates, as Traefik's v2 syntax uses them (through its fork
//! containous/mux): `{name}` and `{name:regex}` variables in hosts, paths and query values,
//! expanded to the one anchored regex gorilla would build. Literal text between variables is
//! escaped; variable names only need to be unique, they capture nothing here.

/// Where a template is used: decides the default variable pattern and the anchoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `HostRegexp`: `{name}` is `[^.]+`; the whole host, case-insensitively.
    Host,
    /// `Path`: `{name}` is `[^/]+`; the whole path.
    Path,
    /// `PathPrefix`: `{name}` is `[^/]+`; a prefix of the path.
    PathPrefix,
    /// A `Query` value: `{name}` is `.*`; the whole value.
    QueryValue,
}

/// A template expanded to a regex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Expanded {
    /// The anchored regex.
    pub regex: String,
    /// Variable names, in order.
    pub vars: Vec<String>,
}

/// Whether gorilla would treat `s` as a template (braces, balanced or not).
pub(super) fn is_template(s: &str) -> bool {
    s.contains(['{', '}'])
}

/// Expands `tpl`; the error says what gorilla would have refused.
pub(super) fn expand(tpl: &str, kind: Kind) -> Result<Expanded, String> {
    let (default, prefix, anchored_end) = match kind {
        // containous/mux: host matching is case-insensitive.
        Kind::Host => ("[^.]+", "(?i)^", true),
        Kind::Path => ("[^/]+", "^", true),
        Kind::PathPrefix => ("[^/]+", "^", false),
        Kind::QueryValue => (".*", "^", true),
    };
    let mut regex = String::from(prefix);
    let mut vars = Vec::new();
    let mut end = 0;
    for (open, close) in braces(tpl)? {
        regex.push_str(&regex::escape(&tpl[end..open]));
        let inner = &tpl[open + 1..close];
        let (name, pattern) = inner.split_once(':').unwrap_or((inner, default));
        if name.is_empty() || pattern.is_empty() {
            return Err(format!("missing name or pattern in {:?}", &tpl[open..=close]));
        }
        // gorilla also compiles each variable's pattern alone, anchored.
        if let Err(err) = regex::Regex::new(&format!("^{pattern}$")) {
            return Err(format!(
                "invalid pattern in {:?}: {}",
                &tpl[open..=close],
                super::args::regex_reason(&err)
            ));
        }
        regex.push_str("(?:");
        regex.push_str(pattern);
        regex.push(')');
        vars.push(name.to_string());
        end = close + 1;
    }
    regex.push_str(&regex::escape(&tpl[end..]));
    if anchored_end {
        regex.push('$');
    }
    if let Err(err) = regex::Regex::new(&regex) {
        return Err(format!("template {tpl:?} gives an invalid regex: {}", super::args::regex_reason(&err)));
    }
    Ok(Expanded { regex, vars })
}

/// Byte positions of each outermost `{` and its `}` (gorilla's `braceIndices`).
fn braces(s: &str) -> Result<Vec<(usize, usize)>, String> {
    let mut level = 0usize;
    let mut open = 0;
    let mut out = Vec::new();
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'{' => {
                if level == 0 {
                    open = i;
                }
                level += 1;
            }
            b'}' => {
                level = level.checked_sub(1).ok_or_else(|| format!("unbalanced braces in {s:?}"))?;
                if level == 0 {
                    out.push((open, i));
                }
            }
            _ => {}
        }
    }
    if level != 0 {
        return Err(format!("unbalanced braces in {s:?}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansions() {
        let cases: [(&str, &str, Kind, Result<&str, &str>); 14] = [
            (
                "host variable with pattern",
                "{sub:[a-z]+}.example.com",
                Kind::Host,
                Ok(r"(?i)^(?:[a-z]+)\.example\.com$"),
            ),
            ("host default pattern", "{sub}.example.com", Kind::Host, Ok(r"(?i)^(?:[^.]+)\.example\.com$")),
            ("host without variables is literal", "a.b", Kind::Host, Ok(r"(?i)^a\.b$")),
            ("path default pattern", "/api/{id}", Kind::Path, Ok(r"^/api/(?:[^/]+)$")),
            ("path two variables", "/{a:[0-9]+}/x/{b}", Kind::Path, Ok(r"^/(?:[0-9]+)/x/(?:[^/]+)$")),
            ("prefix is not anchored at the end", "/api/{v:v[12]}", Kind::PathPrefix, Ok(r"^/api/(?:v[12])")),
            ("alternation stays inside its group", "/{x:a|b}/c", Kind::Path, Ok(r"^/(?:a|b)/c$")),
            ("nested braces belong to the pattern", "/{id:[0-9]{2,3}}", Kind::Path, Ok(r"^/(?:[0-9]{2,3})$")),
            ("literal text is escaped", "/a.b+c/{x}", Kind::Path, Ok(r"^/a\.b\+c/(?:[^/]+)$")),
            ("query default pattern", "{v}", Kind::QueryValue, Ok(r"^(?:.*)$")),
            ("unbalanced open", "/{id", Kind::Path, Err("unbalanced braces")),
            ("unbalanced close", "/id}", Kind::Path, Err("unbalanced braces")),
            ("empty pattern", "/{id:}", Kind::Path, Err("missing name or pattern in \"{id:}\"")),
            ("bad pattern", "/{id:(}", Kind::Path, Err("invalid pattern in \"{id:(}\"")),
        ];
        for (name, tpl, kind, want) in cases {
            let got = expand(tpl, kind);
            match want {
                Ok(re) => assert_eq!(got.map(|e| e.regex).as_deref(), Ok(re), "case {name}"),
                Err(e) => {
                    let got = got.expect_err(name);
                    assert!(got.contains(e), "case {name}: {got}");
                }
            }
        }
    }

    #[test]
    fn variables_are_listed_and_the_regex_matches_like_gorilla() {
        let e = expand("{sub:[a-z]+}.{domain}.com", Kind::Host).expect("valid");
        assert_eq!(e.vars, ["sub", "domain"]);
        let re = regex::Regex::new(&e.regex).expect("compiles");
        for (host, want) in
            [("foo.example.com", true), ("FOO.Example.com", true), ("foo.a.b.com", false), ("9.x.com", false)]
        {
            assert_eq!(re.is_match(host), want, "{host}");
        }
        let empty_name = expand("/{:[0-9]+}", Kind::Path).expect_err("empty name");
        assert!(empty_name.contains("missing name or pattern"), "{empty_name}");
    }
}
