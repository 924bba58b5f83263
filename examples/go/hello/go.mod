module wasmhook.example/hello

go 1.27
