"""BigQuery ML on the local target: the linear and logistic regression models BigQuery trains, here.

The BigQuery emulator stores ``CREATE MODEL`` but trains nothing and answers ``ML.*`` with 501. On the
local target gcpipe's SQL runner hands these statements to this package instead:

* ``CREATE [OR REPLACE] MODEL ... OPTIONS(model_type='logistic_reg' | 'linear_reg', ...) AS SELECT``:
  the SELECT runs in the emulator, the model is fitted here (:mod:`gcpipe.warehouse.bqml.model`) with BigQuery ML's
  preprocessing, options and data split (:mod:`gcpipe.warehouse.bqml.options`), kept as a JSON artefact under
  ``<state_dir>/models`` and registered in the emulator (so ``client.get_model`` and ``list_models`` work);
* ``DROP MODEL [IF EXISTS]``: drops both (the emulator cannot parse the statement);
* ``ML.PREDICT``: rewritten as SQL that the emulator runs (the weights become a SQL expression), so
  predictions are made in the warehouse, not by pulling rows out;
* ``ML.EVALUATE``, ``ML.WEIGHTS``, ``ML.FEATURE_INFO``, ``ML.TRAINING_INFO``: replaced by their rows,
  with BigQuery ML's column names and types, so they can be selected from, joined and filtered.

The gcp target sends the same statements to BigQuery unchanged.
"""
