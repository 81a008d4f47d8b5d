"""The counter (窓口): reception, cases, hand-over, department queues, card reads, pre-applications."""
