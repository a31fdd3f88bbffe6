-- One database per backend, created on the first start of the postgres service.
CREATE DATABASE prefect;
CREATE DATABASE mlflow;
CREATE DATABASE optuna;
