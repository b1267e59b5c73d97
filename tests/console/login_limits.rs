//! The failed-login limits at their edges: a user name that cannot be one (longer than any
//! user name may be) takes no room in the per-name limiter, whose memory an attacker could
//! otherwise fill with a form's worth of text per failure.

use super::{Plain, operator};
use crate::util::Daemon;

#[test]
fn a_name_no_user_can_have_is_limited_per_source_only() {
    let d = Daemon::start();
    operator(&d, "olivia", &[]);
    let plain = Plain::new(&d);
    let long = "n".repeat(60_000);
    let before = d.event_count();
    // Five failures would lock a real user name; this one cannot be a user's.
    for _ in 0..6 {
        let a = plain.post(
            "/ui/login",
            "",
            &format!("user={long}&password=wrong+wrong+wrong"),
            None,
        );
        assert_eq!(a.status, 401, "{}", &a.body[..a.body.len().min(300)]);
    }
    assert_eq!(d.event_count(), before + 6, "each failure audited");
    // The per-source limit still holds: 20 failures per address.
    let mut last = 0;
    for _ in 0..15 {
        last = plain
            .post("/ui/login", "", &format!("user={long}&password=x"), None)
            .status;
    }
    assert_eq!(last, 429);
}
