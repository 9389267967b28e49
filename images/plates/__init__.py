"""Plates: finding and covering them, plate tasks, their delivery, review and expiry.

Compatible with plate_detect: a task of up to 50 images answers at once with a task id, each plate
is covered by a stub image warped onto it (or blurred, pixelated, filled), the results are WebP
without EXIF, pushed to the tenant's backend by signed webhooks, and deleted after a TTL.

`finding` looks for the plates in a picture and `covering` covers them; `tasks` runs plate tasks
on them and `delivery` sends the results to the tenant's webhooks; `steps` is the pipeline's
`anonymize` step for stored images; `selectors` reads the tenant's settings and a task's results;
`services` changes the settings and the stub image, and queues a stored image's covering;
`review` is the operators' corrections; `api`, `review_views` and `admin` face people.
"""
