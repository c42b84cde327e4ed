"""Pull intake: the scheduler polling channels that are pulled rather than pushing (see scheduler)."""

from order_intake.pulling.scheduler import PullScheduler, PullSettings

__all__ = ["PullScheduler", "PullSettings"]
