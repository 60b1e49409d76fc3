//! AFL target for Buffering's `retryExpression` parser (weir-proto). Invariants: no panic on
//! any input; an expression that parses evaluates on any attempt without panicking, and its
//! debug form is stable when parsed twice.

use weir_proto::retry_expression::{Attempt, RetryExpr};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        let Ok(expr) = RetryExpr::parse(text) else { return };
        assert_eq!(
            RetryExpr::parse(text).ok().as_ref(),
            Some(&expr),
            "parsing {text:?} is not deterministic"
        );
        for (attempt, status) in [(1, 200), (2, 502), (11, 504), (u32::MAX, 0)] {
            let _ = expr.eval(&Attempt { attempt, status, method: "GET" });
        }
    });
}
