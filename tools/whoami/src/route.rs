//! Which reply a request asks for: `/bench`, or the whoami page with its `?wait=` and `?status=`
//! knobs. Decides from the head alone, before the body is read.

use std::time::Duration;

use crate::bad_request::BadRequest;
use crate::duration::parse_go_duration;
use crate::head::Head;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/bench`: `ok`, minimal headers.
    Bench,
    /// The whoami page, after sleeping `wait`, with status `status`.
    Whoami { wait: Duration, status: u16 },
}

impl Route {
    pub fn of(head: &Head) -> Result<Route, BadRequest> {
        if head.path() == b"/bench" {
            return Ok(Route::Bench);
        }
        let wait = match head.query_param(b"wait") {
            None => Duration::ZERO,
            Some(value) => std::str::from_utf8(value)
                .ok()
                .and_then(|s| parse_go_duration(s).ok())
                .ok_or(BadRequest::WaitParam)?,
        };
        let status = match head.query_param(b"status") {
            None => 200,
            Some(value) => std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
                // 1xx are interim responses: they cannot be the answer.
                .filter(|s| (200..=599).contains(s))
                .ok_or(BadRequest::StatusParam)?,
        };
        Ok(Route::Whoami { wait, status })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let page = |ms, status| Ok(Route::Whoami { wait: Duration::from_millis(ms), status });
        let cases: &[(&str, &str, Result<Route, BadRequest>)] = &[
            ("root", "/", page(0, 200)),
            ("bench", "/bench", Ok(Route::Bench)),
            ("bench ignores knobs", "/bench?status=500", Ok(Route::Bench)),
            ("bench prefix is not bench", "/benchmark", page(0, 200)),
            ("wait", "/slow?wait=1500ms", page(1_500, 200)),
            ("status", "/?status=503", page(0, 503)),
            ("wait and status", "/x?status=404&wait=2s", page(2_000, 404)),
            ("bad wait", "/?wait=soon", Err(BadRequest::WaitParam)),
            ("wait without unit", "/?wait=5", Err(BadRequest::WaitParam)),
            ("interim status", "/?status=101", Err(BadRequest::StatusParam)),
            ("status too large", "/?status=600", Err(BadRequest::StatusParam)),
            ("status not a number", "/?status=ok", Err(BadRequest::StatusParam)),
        ];
        for (name, target, want) in cases {
            let raw = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
            let (head, _) = Head::parse(raw.as_bytes()).unwrap().unwrap();
            assert_eq!(&Route::of(&head), want, "case {name}");
        }
    }
}
