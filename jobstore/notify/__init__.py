"""Webhook notifications: what is told (``events``), to whom (``urls``), how it is signed
(``signing``), and the pass that delivers the outbox (``deliver``, over ``http``).

The training path only writes outbox rows, in the transaction of the change they announce
(``jobstore.repo.notifications``); delivery happens later, in the reaper's process. See
docs/notifications.md.
"""
