"""Reports: drift reports, email delivery with an outbox, the trend chart."""
