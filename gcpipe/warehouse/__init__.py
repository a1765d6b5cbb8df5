"""The warehouse: BigQuery SQL files run statement by statement (``runner``), their names and parameters
(``params``), scripts (``script``), load jobs (``load``), local BigQuery ML (``bqml``), and Cloud SQL for
the rentals lab (``cloudsql``)."""
