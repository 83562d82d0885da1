print("example-runtime: not built yet")
