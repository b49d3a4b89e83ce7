print("hello from the code snapshot")
