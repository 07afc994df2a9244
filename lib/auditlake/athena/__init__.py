"""What auditlake hands to Athena: table DDL, Glue Data Catalog registration, the query pack."""
