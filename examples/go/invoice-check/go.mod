module wasmhook.example/invoice-check

go 1.27
