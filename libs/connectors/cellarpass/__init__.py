"""The CellarPass connector: paid reservations pulled on a schedule, sync results and invite lists back."""
