"""Sources: documents kept in sync from where they live (a folder, a website, an S3 bucket, Notion),
published as document events like any other upstream system's. Each source item keeps one
document (its id derived from the source and the item's own id); a sync publishes what was created
or changed at the source, skips what was not (no fetch, no revision, no model call) and deletes
what is gone, unless the listing was partial."""
