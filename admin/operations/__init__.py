"""Operations app: the dead-letter workbench of admin's own queue (admin.dlq) and its audit trail."""
