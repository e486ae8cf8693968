"""Receivers: inbound webhooks that request reconciles (notification-controller's
Receiver API and receiver server).

- `reconciler`: `ReceiverReconciler` (token → `status.webhookPath`, Ready);
- `server`: the aiohttp webhook server (`ReceiverServer`, `serve_receivers`),
  the only module here that does I/O;
- `settings`: `ReceiverSettings` (FLUXBUS_RECEIVER_ADDR).

The pure checks live in `fluxbus_notifier.logic.webhooks` and
`fluxbus_notifier.logic.receiver_targets`.
"""
