//! The comparison a reload makes: which settings differ between the running and the new file.
//!
//! Every settings struct is named by an exhaustive destructuring, one function per section, so a
//! setting added later does not compile until it is listed here: a reload can then never change
//! a setting silently.

use super::{
    AdminSettings, AlertsSettings, CiscoSettings, ConsoleSettings, DeviceSettings, LogSettings,
    RumSettings, Settings, ShutdownSettings, SyncSettings, Timers,
};

/// The dotted keys found to differ, in the order they were checked.
#[derive(Default)]
struct Changed(Vec<&'static str>);

impl Changed {
    fn check(&mut self, key: &'static str, differs: bool) {
        if differs {
            self.0.push(key);
        }
    }
}

impl Settings {
    /// The dotted keys whose validated value differs between `self` and `new`, in file order.
    pub fn changed_keys(&self, new: &Settings) -> Vec<&'static str> {
        let mut c = Changed::default();
        let Settings {
            data_dir,
            device,
            admin,
            log,
            timers,
            shutdown,
            console,
            alerts,
            tls,
            trusted_license_keys,
            sync,
            rum,
            cisco,
        } = self;
        c.check("data_dir", *data_dir != new.data_dir);
        device.changed(&new.device, &mut c);
        admin.changed(&new.admin, &mut c);
        log.changed(&new.log, &mut c);
        timers.changed(&new.timers, &mut c);
        shutdown.changed(&new.shutdown, &mut c);
        console.changed(&new.console, &mut c);
        alerts.changed(&new.alerts, &mut c);
        c.check("tls", *tls != new.tls);
        c.check(
            "sync.trusted_license_keys",
            *trusted_license_keys != new.trusted_license_keys,
        );
        sync.changed(&new.sync, &mut c);
        rum.changed(&new.rum, &mut c);
        cisco.changed(&new.cisco, &mut c);
        c.0
    }
}

impl DeviceSettings {
    fn changed(&self, d: &DeviceSettings, c: &mut Changed) {
        let DeviceSettings {
            listen,
            max_connections,
            max_body_bytes,
            request_timeout,
            handshake_timeout,
            max_connections_per_address,
            body_timeout,
            header_timeout,
            idle_timeout,
            http2_keepalive_interval,
            http2_keepalive_timeout,
        } = self;
        c.check("device.listen", *listen != d.listen);
        c.check(
            "device.max_connections",
            *max_connections != d.max_connections,
        );
        c.check("device.max_body_bytes", *max_body_bytes != d.max_body_bytes);
        c.check(
            "device.request_timeout",
            *request_timeout != d.request_timeout,
        );
        c.check(
            "device.handshake_timeout",
            *handshake_timeout != d.handshake_timeout,
        );
        c.check(
            "device.max_connections_per_address",
            *max_connections_per_address != d.max_connections_per_address,
        );
        c.check("device.body_timeout", *body_timeout != d.body_timeout);
        c.check("device.header_timeout", *header_timeout != d.header_timeout);
        c.check("device.idle_timeout", *idle_timeout != d.idle_timeout);
        c.check(
            "device.http2_keepalive_interval",
            *http2_keepalive_interval != d.http2_keepalive_interval,
        );
        c.check(
            "device.http2_keepalive_timeout",
            *http2_keepalive_timeout != d.http2_keepalive_timeout,
        );
    }
}

impl AdminSettings {
    fn changed(&self, a: &AdminSettings, c: &mut Changed) {
        let AdminSettings {
            listen,
            socket,
            socket_mode,
            max_body_bytes,
            request_timeout,
            body_timeout,
        } = self;
        c.check("admin.listen", *listen != a.listen);
        c.check("admin.socket", *socket != a.socket);
        c.check("admin.socket_mode", *socket_mode != a.socket_mode);
        c.check("admin.max_body_bytes", *max_body_bytes != a.max_body_bytes);
        c.check(
            "admin.request_timeout",
            *request_timeout != a.request_timeout,
        );
        c.check("admin.body_timeout", *body_timeout != a.body_timeout);
    }
}

impl LogSettings {
    fn changed(&self, l: &LogSettings, c: &mut Changed) {
        let LogSettings { level, format } = self;
        c.check("log.level", *level != l.level);
        c.check("log.format", *format != l.format);
    }
}

impl Timers {
    fn changed(&self, t: &Timers, c: &mut Changed) {
        let Timers {
            certificate_validity,
            renew_after,
            report_interval,
            authorization_valid,
            deregister_after,
            clock_skew,
            sweep_interval,
        } = self;
        c.check(
            "timers.certificate_validity",
            *certificate_validity != t.certificate_validity,
        );
        c.check("timers.renew_after", *renew_after != t.renew_after);
        c.check(
            "timers.report_interval",
            *report_interval != t.report_interval,
        );
        c.check(
            "timers.authorization_valid",
            *authorization_valid != t.authorization_valid,
        );
        c.check(
            "timers.deregister_after",
            *deregister_after != t.deregister_after,
        );
        c.check("timers.clock_skew", *clock_skew != t.clock_skew);
        c.check("timers.sweep_interval", *sweep_interval != t.sweep_interval);
    }
}

impl ShutdownSettings {
    fn changed(&self, s: &ShutdownSettings, c: &mut Changed) {
        let ShutdownSettings { drain_timeout } = self;
        c.check("shutdown.drain_timeout", *drain_timeout != s.drain_timeout);
    }
}

impl ConsoleSettings {
    fn changed(&self, s: &ConsoleSettings, c: &mut Changed) {
        let ConsoleSettings {
            idle_timeout,
            absolute_timeout,
        } = self;
        c.check("console.idle_timeout", *idle_timeout != s.idle_timeout);
        c.check(
            "console.absolute_timeout",
            *absolute_timeout != s.absolute_timeout,
        );
    }
}

impl AlertsSettings {
    fn changed(&self, a: &AlertsSettings, c: &mut Changed) {
        let AlertsSettings { interval, webhook } = self;
        c.check("alerts.interval", *interval != a.interval);
        c.check("alerts.webhook", *webhook != a.webhook);
    }
}

impl SyncSettings {
    fn changed(&self, s: &SyncSettings, c: &mut Changed) {
        let SyncSettings {
            name,
            interval,
            retry_min,
            retry_max,
            proxy,
            max_age,
            max_changes_per_message,
        } = self;
        c.check("sync.name", *name != s.name);
        c.check("sync.interval", *interval != s.interval);
        c.check("sync.retry_min", *retry_min != s.retry_min);
        c.check("sync.retry_max", *retry_max != s.retry_max);
        c.check("sync.proxy", *proxy != s.proxy);
        c.check("sync.max_age", *max_age != s.max_age);
        c.check(
            "sync.max_changes_per_message",
            *max_changes_per_message != s.max_changes_per_message,
        );
    }
}

impl RumSettings {
    fn changed(&self, r: &RumSettings, c: &mut Changed) {
        let RumSettings {
            guessable_urls,
            allow,
        } = self;
        c.check("rum.guessable_urls", *guessable_urls != r.guessable_urls);
        c.check("rum.allow", *allow != r.allow);
    }
}

impl CiscoSettings {
    fn changed(&self, r: &CiscoSettings, c: &mut Changed) {
        let CiscoSettings {
            poll_interval,
            retry_min,
            retry_max,
            timeout,
            ack_alert_after_days,
            import_encoding,
        } = self;
        c.check("cisco.poll_interval", *poll_interval != r.poll_interval);
        c.check("cisco.retry_min", *retry_min != r.retry_min);
        c.check("cisco.retry_max", *retry_max != r.retry_max);
        c.check("cisco.timeout", *timeout != r.timeout);
        c.check(
            "cisco.ack_alert_after",
            *ack_alert_after_days != r.ack_alert_after_days,
        );
        c.check("cisco.import_body", *import_encoding != r.import_encoding);
    }
}
