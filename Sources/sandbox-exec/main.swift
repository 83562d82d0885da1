print("sandbox-exec: not built yet")
