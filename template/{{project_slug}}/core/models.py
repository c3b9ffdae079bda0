from django.db import models


class ThrottleCounter(models.Model):
    """A rate-limit window counter, for deployments whose shared cache is the database.

    Rows are incremented with one atomic upsert (see throttling.DatabaseCounter);
    the cache framework cannot do that, because its `incr` reads and then writes.
    """

    key = models.CharField(max_length=255, primary_key=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}={self.count}"
