"""The model families of local BigQuery ML, one module each, by BigQuery's ``model_type``."""

from __future__ import annotations

from gcpipe.warehouse.bqml.models.base import Model


def model_class(model_type: str) -> type[Model]:
    """The class that fits and answers for ``model_type`` (imported when first needed)."""
    if model_type in ("linear_reg", "logistic_reg"):
        from gcpipe.warehouse.bqml.models.glm import GlmModel as cls
    elif model_type == "kmeans":
        from gcpipe.warehouse.bqml.models.kmeans import KMeansModel as cls
    elif model_type in ("boosted_tree_classifier", "boosted_tree_regressor"):
        from gcpipe.warehouse.bqml.models.boosted_tree import BoostedTreeModel as cls
    elif model_type == "matrix_factorization":
        from gcpipe.warehouse.bqml.models.matrix_factorization import MatrixFactorizationModel as cls
    else:
        from gcpipe.warehouse.bqml.models.arima import ArimaPlusModel as cls
    return cls


def load_model(raw: dict) -> Model:
    return model_class(raw["options"]["model_type"]).from_json(raw)
