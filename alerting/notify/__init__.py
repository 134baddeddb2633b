"""Notifications: routing rules, Alertmanager-style grouping, reminders, escalation, delivery.

    model     alarms, warnings, rules, messages (values)
    stages    the pipeline: FanoutStage over channels of
              MultiStage(Channel ▶ Ack ▶ Escalation ▶ Dedup ▶ Send)
    engine    groups and the notification log; ``step(now)`` returns the deliveries due (pure)
    retry     the one retry loop: exponential backoff for failures a notifier calls retryable
    notifiers webhook (HMAC-signed JSON), e-mail (SMTP), WeCom and DingTalk group robots
    render    message texts; config  validated channel and rule settings
    repository, config_repository  SQL;  service  the NotifierService (LISTEN, lock, threads)
"""
