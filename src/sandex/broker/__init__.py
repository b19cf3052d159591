"""The broker between gateways and the engine (DESIGN §7): Redis Streams.

Gateways send commands on one stream that the engine reads as a consumer group (a
command it took but did not acknowledge is delivered again after a crash); the engine
answers each gateway on a stream of its own and publishes its public events on one
stream every gateway follows. Messages are :mod:`sandex.broker.codec` bytes.
"""

__all__: list[str] = []
