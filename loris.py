import socket,time,sys
port=int(sys.argv[1]); n=int(sys.argv[2]); gap=float(sys.argv[3]); dur=float(sys.argv[4])
ss=[socket.create_connection(("127.0.0.1",port)) for _ in range(n)]
msg=b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + b"X-a: b\r\n"*1000
t0=time.time(); i=0
while time.time()-t0<dur and ss:
    for s in list(ss):
        try: s.send(msg[i:i+1])
        except Exception as e: print("closed at %.1f: %s"%(time.time()-t0,e)); ss.remove(s)
    i+=1; time.sleep(gap)
print("alive",len(ss))
