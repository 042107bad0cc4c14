== palaver bench group --members 10000 --sends 100 --interval-ms 500
