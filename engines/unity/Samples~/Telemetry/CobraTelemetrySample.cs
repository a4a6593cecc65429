// A sample scene script: publishes the frame rate through the metrics publisher and shows the slow frames that a
// StreamSQL subscription sends back. Add it to any GameObject, fill the inspector fields, press Play.
using System.Collections.Generic;
using Cobra;
using UnityEngine;

public sealed class CobraTelemetrySample : MonoBehaviour
{
    [Tooltip("ws://host:port or wss://host")] public string endpoint = "ws://127.0.0.1:8765";
    public string appKey = "_pubsub";
    public string role = "pubsub";
    public string secret = "";
    [Tooltip("Event id, and the channel the StreamSQL filter reads")] public string fpsId = "engine_fps_id";
    [Tooltip("Frames slower than this come back from the server")] public int slowFps = 30;

    private CobraClient client;
    private CobraMetrics metrics;
    private readonly List<string> slowFrames = new List<string>();
    private string status = "disconnected";
    private float nextPush;

    private void Start()
    {
        // Events reach OnCobraEvent on the main thread: the dispatcher is drained every frame.
        CobraLibrary.EnsureDispatcherBehaviour();
        client = new CobraClient(new CobraOptions
        {
            Endpoint = endpoint,
            AppKey = appKey,
            Role = role,
            Secret = secret,
            SpoolDirectory = Application.persistentDataPath + "/cobra-spool",
        }, OnCobraEvent, CobraLibrary.MainThread);
        metrics = client.CreateMetrics("sms_republished_v1_neo");
        metrics.SetDeviceAttributes("{\"game\":\"" + Application.productName + "\",\"os_name\":\"" +
                                    SystemInfo.operatingSystemFamily + "\",\"app_version\":\"" + Application.version + "\"}");
        client.Subscribe(fpsId, "slow-frames", "select data.fps, device.game from `" + fpsId + "` where data.fps < " + slowFps);
        client.Connect();
    }

    private void OnCobraEvent(CobraEvent e)
    {
        switch (e.Kind)
        {
            case CobraEventKind.Authenticated:
                status = "connected";
                break;
            case CobraEventKind.Error:
                status = "error: " + e.Reason;
                break;
            case CobraEventKind.SubscriptionData:
                slowFrames.AddRange(e.Messages);
                if (slowFrames.Count > 10)
                {
                    slowFrames.RemoveRange(0, slowFrames.Count - 10);
                }
                break;
        }
    }

    private void Update()
    {
        if (Time.unscaledTime >= nextPush)
        {
            nextPush = Time.unscaledTime + 1f;
            metrics.Push(fpsId, "{\"fps\":" + Mathf.RoundToInt(1f / Time.unscaledDeltaTime) + "}");
        }
    }

    // Mobile: close the socket in the background, reconnect on return (publishes keep queueing meanwhile).
    private void OnApplicationPause(bool paused)
    {
        if (client == null) return;
        if (paused) client.Suspend(); else client.Resume();
    }

    private void OnDestroy()
    {
        if (metrics != null) metrics.Dispose();
        if (client != null) client.Dispose();
    }

    private void OnGUI()
    {
        GUILayout.Label("cobra " + CobraLibrary.Version + ": " + status);
        foreach (string frame in slowFrames) GUILayout.Label(frame);
    }
}
