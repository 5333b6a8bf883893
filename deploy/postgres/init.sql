-- One database per service (the order service's, "orders", is created by POSTGRES_DB).
CREATE DATABASE storage;
CREATE DATABASE delivery;
